package glue

import (
	"fmt"
	"strings"

	"github.com/blockllm/blockllm-go/hf/tokenizer"
)

// PaperTasks are the GLUE tasks of the GaLore and BlockLLM tables, in their
// column order (WNLI, which they leave out, is not among them).
var PaperTasks = []string{"cola", "stsb", "mrpc", "rte", "sst2", "mnli", "qnli", "qqp"}

// ParseTasks parses a comma-separated list of GLUE task names in any spelling
// LookupTask accepts; "all" stands for PaperTasks (add "wnli" for the
// ninth). Repeated tasks are listed once.
func ParseTasks(list string) ([]Task, error) {
	var out []Task
	seen := map[string]bool{}
	add := func(name string) error {
		t, err := LookupTask(name)
		if err != nil {
			return err
		}
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t)
		}
		return nil
	}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case strings.EqualFold(f, "all"):
			for _, n := range PaperTasks {
				if err := add(n); err != nil {
					return nil, err
				}
			}
		default:
			if err := add(f); err != nil {
				return nil, err
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("glue: no task given")
	}
	return out, nil
}

// Encoded is one tokenized GLUE example: the token ids of the sentence (or of
// the pair, joined by the tokenizer's post-processor, e.g. "<s> A </s></s> B
// </s>" for RoBERTa) and its label (class id, or similarity score for stsb;
// -1 when unlabelled).
type Encoded struct {
	IDs   []int
	Label float64
}

// Encode tokenizes the examples of ds with tok, adding the special tokens
// and truncating to maxLen tokens (special tokens included; for pairs the
// longer input loses tokens first, as Hugging Face's "longest_first"). maxLen
// <= 0 means no truncation. The tokenizer's own truncation and padding
// settings are suspended during the call (padding is done per batch by
// Collate), so tok must not be used concurrently.
func Encode(tok *tokenizer.Tokenizer, ds *Dataset, maxLen int) ([]Encoded, error) {
	if tok == nil || ds == nil {
		return nil, fmt.Errorf("glue: Encode needs a tokenizer and a dataset")
	}
	oldT, oldP := tok.Truncation(), tok.Padding()
	defer func() { tok.SetTruncation(oldT); tok.SetPadding(oldP) }()
	tok.SetPadding(nil)
	if maxLen > 0 {
		tok.SetTruncation(&tokenizer.Truncation{MaxLength: maxLen, Strategy: tokenizer.LongestFirst})
	} else {
		tok.SetTruncation(nil)
	}
	a := make([]string, len(ds.Examples))
	b := make([]string, len(ds.Examples))
	for i, e := range ds.Examples {
		a[i], b[i] = e.TextA, e.TextB
	}
	var encs []*tokenizer.Encoding
	var err error
	if ds.Task.Pair() {
		encs, err = tok.EncodePairBatch(a, b, true)
	} else {
		encs, err = tok.EncodeBatch(a, true)
	}
	if err != nil {
		return nil, fmt.Errorf("glue: tokenizing %s %s: %w", ds.Task.Name, ds.Split, err)
	}
	out := make([]Encoded, len(encs))
	for i, e := range encs {
		if e.Len() == 0 {
			return nil, fmt.Errorf("glue: %s %s example %d (idx %d) has no tokens", ds.Task.Name, ds.Split, i, ds.Examples[i].Idx)
		}
		out[i] = Encoded{IDs: e.IDs, Label: ds.Examples[i].Label}
	}
	return out, nil
}
