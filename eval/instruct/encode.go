package instruct

import (
	"errors"
	"fmt"
	"strings"

	"github.com/blockllm/blockllm-go/hf/chat"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
)

// IgnoreIndex is the label of positions left out of the loss (PyTorch's
// cross_entropy ignore_index and Hugging Face's -100).
const IgnoreIndex = -100

// AlpacaPrompts are the two prompt templates of an Alpaca-style data set:
// WithInput for records with a non-empty "input", NoInput for the others.
// {instruction} and {input} are replaced by the record's fields; the
// response follows the prompt directly.
type AlpacaPrompts struct {
	WithInput, NoInput string
}

// StanfordAlpaca is the prompt of tatsu-lab/stanford_alpaca's train.py
// (PROMPT_DICT), exactly: the prompt ends with "### Response:" and the output
// follows it with no line break.
var StanfordAlpaca = AlpacaPrompts{
	WithInput: "Below is an instruction that describes a task, paired with an input that provides further context. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:",
	NoInput: "Below is an instruction that describes a task. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n{instruction}\n\n### Response:",
}

// AlpacaNewline is StanfordAlpaca with a line break after "### Response:",
// the variant of alpaca-lora, torchtune and most later Alpaca fine-tunes.
var AlpacaNewline = AlpacaPrompts{
	WithInput: StanfordAlpaca.WithInput + "\n",
	NoInput:   StanfordAlpaca.NoInput + "\n",
}

// Format returns the prompt of an Alpaca record.
func (p AlpacaPrompts) Format(instruction, input string) string {
	if input != "" {
		return strings.NewReplacer("{instruction}", instruction, "{input}", input).Replace(p.WithInput)
	}
	return strings.ReplaceAll(p.NoInput, "{instruction}", instruction)
}

// Example is one encoded example.
type Example struct {
	// IDs are the token ids; Labels has one entry per id: the id itself
	// where the position is learned (a response token), IgnoreIndex
	// elsewhere. As in Hugging Face, the model shifts them: position t's
	// logits are scored against Labels[t+1].
	IDs, Labels []int
	// Truncated is set when the example was cut to the maximum length;
	// PromptCut when that cut removed prompt tokens from the left.
	Truncated, PromptCut bool
	// Where is the record's place (Record.Where).
	Where string
}

// ResponseTokens counts the learned positions.
func (e *Example) ResponseTokens() int {
	n := 0
	for _, l := range e.Labels {
		if l != IgnoreIndex {
			n++
		}
	}
	return n
}

// Encoder turns records into examples.
type Encoder struct {
	// Tokenizer encodes the text. Required.
	Tokenizer *tokenizer.Tokenizer
	// Template renders chat records (Messages, ShareGPT); required for them.
	Template *chat.Template
	// Alpaca is the prompt of Alpaca records; StanfordAlpaca when zero.
	Alpaca AlpacaPrompts
	// MaxLen bounds the tokens of an example (0: no bound). Longer examples
	// are cut as Truncate describes.
	MaxLen int
	// MinResponse is the least number of response tokens a cut example
	// keeps (when the response has that many); MaxLen/4 (at least 1) when 0.
	MinResponse int
}

// Encode encodes one record.
//
// Alpaca and prompt/completion records are tokenized as prompt + response
// with the tokenizer's special tokens (the BOS of Llama-style tokenizers),
// then EOS is appended; the response and EOS are learned. Chat records are
// rendered with the template (add_generation_prompt false), tokenized
// without adding special tokens (the template writes them, as
// apply_chat_template(tokenize=True) does) and the tokens that overlap an
// assistant turn (chat.Template.RenderSpans: the reply and the template's
// end-of-turn marker) are learned. A token that straddles the boundary
// between prompt and response is learned.
func (e *Encoder) Encode(r *Record) (Example, error) {
	if e.Tokenizer == nil {
		return Example{}, errors.New("instruct: Encoder needs a Tokenizer")
	}
	var (
		text      string
		spans     [][2]int
		addSpec   bool
		appendEOS bool
	)
	switch r.Layout {
	case Alpaca, PromptCompletion:
		prompt, resp := r.Prompt, r.Completion
		if r.Layout == Alpaca {
			p := e.Alpaca
			if p == (AlpacaPrompts{}) {
				p = StanfordAlpaca
			}
			prompt, resp = p.Format(r.Instruction, r.Input), r.Output
		}
		text = prompt + resp
		spans = [][2]int{{len(prompt), len(text)}}
		addSpec, appendEOS = true, true
	case Messages, ShareGPT:
		if e.Template == nil {
			return Example{}, fmt.Errorf("instruct: %s: a %s record needs a chat template", r.Where(), r.Layout)
		}
		var cs []chat.Span
		var err error
		text, cs, err = e.Template.RenderSpans(r.Messages)
		if err != nil {
			return Example{}, fmt.Errorf("instruct: %s: %v", r.Where(), err)
		}
		for _, s := range cs {
			spans = append(spans, [2]int{s.Start, s.End})
		}
	default:
		return Example{}, fmt.Errorf("instruct: %s: unknown layout %v", r.Where(), r.Layout)
	}
	enc, err := e.Tokenizer.Encode(text, addSpec)
	if err != nil {
		return Example{}, fmt.Errorf("instruct: %s: %v", r.Where(), err)
	}
	ex := Example{Where: r.Where(), IDs: append([]int(nil), enc.IDs...), Labels: make([]int, len(enc.IDs))}
	for i, off := range enc.Offsets {
		ex.Labels[i] = IgnoreIndex
		if off[1] <= off[0] {
			continue // special tokens added by the post-processor
		}
		for _, s := range spans {
			if off[0] < s[1] && off[1] > s[0] {
				ex.Labels[i] = enc.IDs[i]
				break
			}
		}
	}
	if appendEOS {
		eos := e.Tokenizer.EOS()
		if eos < 0 {
			return Example{}, fmt.Errorf("instruct: %s: the tokenizer has no EOS token to end the response with", r.Where())
		}
		n := len(ex.IDs)
		if n > 0 && ex.IDs[n-1] == eos && enc.Offsets[n-1][1] <= enc.Offsets[n-1][0] {
			ex.Labels[n-1] = eos // the post-processor already appended EOS
		} else {
			ex.IDs = append(ex.IDs, eos)
			ex.Labels = append(ex.Labels, eos)
		}
	}
	if ex.ResponseTokens() == 0 {
		return Example{}, fmt.Errorf("instruct: %s: the response has no tokens", r.Where())
	}
	if e.MaxLen > 0 && len(ex.IDs) > e.MaxLen {
		e.truncate(&ex)
	}
	return ex, nil
}

// truncate cuts ex to MaxLen tokens keeping at least min(MinResponse,
// response length) response tokens: if the tokens before the first response
// token (the prompt) and that many response tokens fit, the end is cut;
// otherwise the prompt is cut from the left (after a leading BOS, which is
// kept) so that they fit, and the response is cut on the right.
func (e *Encoder) truncate(ex *Example) {
	first := 0
	for first < len(ex.Labels) && ex.Labels[first] == IgnoreIndex {
		first++
	}
	resp := len(ex.IDs) - first
	keep := e.MinResponse
	if keep <= 0 {
		keep = e.MaxLen / 4
	}
	keep = min(max(keep, 1), resp, e.MaxLen)
	ex.Truncated = true
	if first+keep <= e.MaxLen {
		ex.IDs, ex.Labels = ex.IDs[:e.MaxLen], ex.Labels[:e.MaxLen]
		return
	}
	lead := 0
	if bos := e.Tokenizer.BOS(); bos >= 0 && len(ex.IDs) > 0 && ex.IDs[0] == bos && ex.Labels[0] == IgnoreIndex {
		lead = 1
	}
	promptKeep := e.MaxLen - keep - lead
	if promptKeep < 0 { // MaxLen 1 with a BOS: keep the response only
		lead, promptKeep = 0, e.MaxLen-keep
	}
	ids := make([]int, 0, e.MaxLen)
	labels := make([]int, 0, e.MaxLen)
	ids, labels = append(ids, ex.IDs[:lead]...), append(labels, ex.Labels[:lead]...)
	ids, labels = append(ids, ex.IDs[first-promptKeep:first+keep]...), append(labels, ex.Labels[first-promptKeep:first+keep]...)
	ex.IDs, ex.Labels, ex.PromptCut = ids, labels, true
}

// Stats summarises an encoded data set.
type Stats struct {
	Examples int
	// Truncated counts the examples cut to MaxLen; PromptCut those of them
	// whose prompt was cut from the left.
	Truncated, PromptCut int
	// Tokens and ResponseTokens count all and learned positions.
	Tokens, ResponseTokens int
}

// EncodeAll encodes records in order and returns the examples with their
// statistics; the first error stops it.
func (e *Encoder) EncodeAll(recs []Record) ([]Example, Stats, error) {
	var st Stats
	out := make([]Example, 0, len(recs))
	for i := range recs {
		ex, err := e.Encode(&recs[i])
		if err != nil {
			return nil, st, err
		}
		st.Examples++
		if ex.Truncated {
			st.Truncated++
		}
		if ex.PromptCut {
			st.PromptCut++
		}
		st.Tokens += len(ex.IDs)
		st.ResponseTokens += ex.ResponseTokens()
		out = append(out, ex)
	}
	return out, st, nil
}
