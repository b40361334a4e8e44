// Command generate runs a Llama checkpoint as a text generator: it continues a prompt,
// or answers chat messages through the model's chat template, streaming the text to
// stdout as the tokens come. Each new token costs one position (a KV cache keeps the
// keys and values of the ones before).
//
//	generate --model runs/llama/blockllm/final --prompt 'Once upon a time' --max-new-tokens 100
//	generate --model DIR --chat 'Write a fortune about love.' --system 'You are terse.'
//	generate --model DIR --chat 'Hi' --temperature 0.7 --top-p 0.9 --seed 3
//	generate --model DIR --interactive
//
// Decoding follows transformers' generate: greedy unless the model's
// generation_config.json says do_sample (or --temperature > 0 asks for sampling);
// temperature, then top-k, then top-p; a seed makes sampling reproducible; generation
// stops at any eos_token_id of config.json and generation_config.json (in chat mode
// also at the tokenizer's eos_token) or after --max-new-tokens. Run with -h for every
// flag.
//
// It is a command of its own rather than a mode of eval: eval measures a checkpoint
// over data files (perplexity, GLUE) with flags for windows, batches and tasks, while
// generation takes a prompt or a conversation and sampling flags; none of either's
// flags means anything to the other.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/blockllm/blockllm-go/cmd/internal/cli"
	"github.com/blockllm/blockllm-go/hf/chat"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/generate"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

func main() { cli.Main("generate", run) }

// stdin is where --prompt-file - and --interactive read (a variable for the tests).
var stdin io.Reader = os.Stdin

type options struct {
	cli.Runtime
	model, tokenizer                 string
	prompt, promptFile               string
	chat, system, messages, template string
	interactive                      bool
	maxNewTokens                     int
	temperature, topP                float64
	topK                             int
	seed                             uint64
	noCache, json, fused             bool

	set      map[string]bool // the flags given on the command line
	chatMode bool            // --chat, --messages or --interactive

	// set up by run
	stdout, stderr io.Writer
	dev            torch.Device
	dtype          torch.DType
	genCfg         *generate.Config
	sampling       generate.Sampling
	tok            *tokenizer.Tokenizer
	tmpl           *chat.Template
	lm             *llama.Model
	eos            []int
	maxLen         int
	turn           int
	history        []chat.Message
}

const usage = `Usage:
  generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T --top-k K --top-p P --seed S]
  generate --model DIR --chat MESSAGE [--system TEXT] [--chat-template FILE]
  generate --model DIR --messages FILE   (a JSON conversation: [{"role": ..., "content": ...}, ...])
  generate --model DIR --interactive [--system TEXT]   (one user message per line of stdin)

The model directory holds config.json, model.safetensors (or a sharded index) and
tokenizer.json; chat modes use the chat template of tokenizer_config.json or
chat_template.jinja. The generated text streams to stdout; a summary goes to stderr.
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := cli.NewFlagSet("generate", usage, stderr)
	fs.StringVar(&o.model, "model", "", "Llama checkpoint `DIR` (config.json, model.safetensors, tokenizer.json)")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer.json `FILE` or directory (default: the model directory)")
	fs.StringVar(&o.prompt, "prompt", "", "continue this `TEXT` (tokenized with the tokenizer's special tokens, e.g. a leading <s>)")
	fs.StringVar(&o.promptFile, "prompt-file", "", "continue the text of this `FILE` (- reads stdin)")
	fs.StringVar(&o.chat, "chat", "", "answer this user `MESSAGE` through the model's chat template")
	fs.StringVar(&o.system, "system", "", "system message before the conversation (chat modes)")
	fs.StringVar(&o.messages, "messages", "", "answer the conversation in this JSON `FILE`: a list of {\"role\", \"content\"} (or {\"messages\": [...]})")
	fs.StringVar(&o.template, "chat-template", "", "Jinja chat template `FILE` to use instead of the model's")
	fs.BoolVar(&o.interactive, "interactive", false, "chat: read one user message per line from stdin and answer each, keeping the conversation")
	fs.IntVar(&o.maxNewTokens, "max-new-tokens", 256, "stop after this many new tokens")
	fs.Float64Var(&o.temperature, "temperature", 0, "sample at this temperature; 0: greedy (default: generation_config.json's when it says do_sample, else greedy)")
	fs.IntVar(&o.topK, "top-k", generate.DefaultTopK, "sample from the K most likely tokens; 0: no limit (default: generation_config.json's, else transformers' 50)")
	fs.Float64Var(&o.topP, "top-p", generate.DefaultTopP, "sample from the smallest set of most likely tokens whose probability reaches P; 1: no limit (default: generation_config.json's)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the sampling: the same seed gives the same text")
	fs.BoolVar(&o.noCache, "no-kv-cache", false, "recompute the whole sequence for every token (no KV cache: slower; to check or measure the cache)")
	fs.BoolVar(&o.json, "json", false, "print one JSON line per answer (token ids, text, stop reason, timings) instead of streaming the text")
	o.Runtime.Register(fs, "", "weight dtype: f32, bf16 or f16 (default: the checkpoint's)")
	fs.BoolVar(&o.fused, "fused-sdpa", true, "use libtorch's fused attention where available")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := cli.NoArgs(fs); err != nil {
		return nil, err
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	inputs := 0
	for _, given := range []bool{o.prompt != "" || o.set["prompt"], o.promptFile != "", o.chat != "" || o.set["chat"], o.messages != "", o.interactive} {
		if given {
			inputs++
		}
	}
	o.chatMode = o.set["chat"] || o.messages != "" || o.interactive
	switch {
	case o.model == "":
		fs.Usage()
		return nil, fmt.Errorf("--model DIR is required")
	case inputs != 1:
		return nil, fmt.Errorf("give exactly one of --prompt TEXT, --prompt-file FILE, --chat MESSAGE, --messages FILE and --interactive")
	case !o.chatMode && (o.system != "" || o.template != ""):
		return nil, fmt.Errorf("--system and --chat-template apply to the chat modes (--chat, --messages, --interactive), not to --prompt")
	case o.messages != "" && o.system != "":
		return nil, fmt.Errorf("--system with --messages: put the system message in the file")
	case o.maxNewTokens < 1:
		return nil, fmt.Errorf("--max-new-tokens %d must be positive", o.maxNewTokens)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	o.stdout, o.stderr = stdout, stderr
	if o.genCfg, err = generate.LoadConfig(o.model); err != nil {
		return err
	}
	if o.sampling, err = o.decoding(); err != nil {
		return err
	}
	if o.dev, err = o.Runtime.Setup(); err != nil {
		return err
	}
	if o.DType != "" {
		if o.dtype, err = torch.ParseDType(o.DType); err != nil {
			return fmt.Errorf("--dtype: %w", err)
		}
	}
	if o.tok, _, err = cli.LoadTokenizer(o.tokenizer, o.model, ""); err != nil {
		return err
	}
	mt, err := config.ModelType(o.model)
	if err != nil {
		return err
	}
	if mt != "llama" {
		return fmt.Errorf("generate needs a causal LM (llama); %s has model_type %q", o.model, mt)
	}
	if o.chatMode {
		tdir := o.model
		if o.tokenizer != "" {
			if st, err := os.Stat(o.tokenizer); err == nil && !st.IsDir() {
				tdir = filepath.Dir(o.tokenizer)
			} else {
				tdir = o.tokenizer
			}
		}
		if o.tmpl, err = chat.Load(tdir, chat.Options{File: o.template}); err != nil {
			if o.template == "" {
				return fmt.Errorf("%w (--chat-template FILE gives one; --prompt continues plain text)", err)
			}
			return err
		}
	}
	m, err := llama.Load(o.model, llama.Options{DType: o.dtype, Device: o.dev, FusedSDPA: o.fused})
	if err != nil {
		return err
	}
	defer m.Close()
	o.lm = m
	if v := o.tok.VocabSize(); v > m.Cfg.VocabSize {
		return fmt.Errorf("the tokenizer has %d ids but the model's vocab_size is %d", v, m.Cfg.VocabSize)
	}
	o.maxLen = m.Cfg.MaxPositionEmbeddings
	if o.eos, err = o.eosIDs(); err != nil {
		return err
	}
	if len(o.eos) == 0 {
		fmt.Fprintf(stderr, "generate: note: %s names no eos_token_id (config.json, generation_config.json): generating %d tokens\n", o.model, o.maxNewTokens)
	}

	if o.interactive {
		return o.runInteractive(ctx)
	}
	prompt, text, err := o.promptIDs()
	if err != nil {
		return err
	}
	sess, err := m.NewSession(llama.SessionOptions{NoCache: o.noCache, Capacity: min(len(prompt)+o.maxNewTokens, o.maxLen)})
	if err != nil {
		return err
	}
	defer sess.Close()
	_, err = o.answer(ctx, sess, prompt, text)
	return err
}

// decoding is the sampling: generation_config.json's (transformers' defaults without
// one), with the flags given on the command line on top.
func (o *options) decoding() (generate.Sampling, error) {
	s := o.genCfg.Sampling()
	if o.set["temperature"] {
		s.Temperature = o.temperature
	}
	if o.set["top-k"] {
		s.TopK = o.topK
	}
	if o.set["top-p"] {
		s.TopP = o.topP
	}
	s.Seed = o.seed
	if s.Greedy() {
		for _, f := range []string{"top-k", "top-p"} {
			if o.set[f] {
				src := "greedy decoding"
				if o.genCfg.Path != "" && !o.set["temperature"] {
					src += " (" + o.genCfg.Path + " does not set do_sample)"
				}
				return s, fmt.Errorf("--%s has no effect with %s: give --temperature > 0 to sample", f, src)
			}
		}
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("%w (flags --temperature, --top-k, --top-p)", err)
	}
	return s, nil
}

// eosIDs are the ids generation stops at: config.json's and generation_config.json's
// eos_token_id and, in chat mode, the tokenizer's eos_token (the end of a turn in
// chat templates that end turns with it).
func (o *options) eosIDs() ([]int, error) {
	var ids []int
	add := func(id int) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, id := range o.lm.Cfg.EOSTokenIDs {
		add(id)
	}
	for _, id := range o.genCfg.EOS {
		if id < 0 || id >= o.lm.Cfg.VocabSize {
			return nil, fmt.Errorf("%s: eos_token_id %d is outside the vocabulary [0, %d)", o.genCfg.Path, id, o.lm.Cfg.VocabSize)
		}
		add(id)
	}
	if o.tmpl != nil {
		if eos := o.tmpl.EOS(); eos != "" {
			if id, ok := o.tok.TokenToID(eos); ok {
				add(id)
			}
		}
	}
	return ids, nil
}

// promptIDs is the prompt of the non-interactive modes and its text.
func (o *options) promptIDs() ([]int, string, error) {
	var text string
	var addSpecial bool
	switch {
	case o.chatMode:
		var msgs []chat.Message
		if o.messages != "" {
			var err error
			if msgs, err = readMessages(o.messages); err != nil {
				return nil, "", err
			}
		} else {
			if o.system != "" {
				msgs = append(msgs, chat.Message{Role: "system", Content: o.system})
			}
			msgs = append(msgs, chat.Message{Role: "user", Content: o.chat})
		}
		var err error
		if text, err = o.tmpl.Render(msgs, true); err != nil {
			return nil, "", err
		}
		// The template writes the special tokens (bos_token...) itself: the text is
		// tokenized without adding them again, as apply_chat_template does.
	case o.promptFile != "":
		var b []byte
		var err error
		if o.promptFile == "-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = os.ReadFile(o.promptFile)
		}
		if err != nil {
			return nil, "", fmt.Errorf("--prompt-file: %w", err)
		}
		text, addSpecial = string(b), true
	default:
		text, addSpecial = o.prompt, true
	}
	ids, err := o.encode(text, addSpecial)
	return ids, text, err
}

func (o *options) encode(text string, addSpecial bool) ([]int, error) {
	ids, err := o.tok.EncodeIDs(text, addSpecial)
	if err != nil {
		return nil, err
	}
	switch {
	case len(ids) == 0:
		return nil, fmt.Errorf("the prompt is empty (no tokens, and the tokenizer adds no <s>): give some text")
	case len(ids) >= o.maxLen:
		return nil, fmt.Errorf("the prompt has %d tokens, but %s takes at most %d positions (max_position_embeddings in config.json): shorten it", len(ids), o.model, o.maxLen)
	}
	return ids, nil
}

// readMessages reads a JSON conversation: a list of {"role", "content"} or an object
// with such a "messages" list.
func readMessages(path string) ([]chat.Message, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--messages: %w", err)
	}
	var raw []map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		var obj struct {
			Messages []map[string]any `json:"messages"`
		}
		if err2 := json.Unmarshal(b, &obj); err2 != nil || obj.Messages == nil {
			return nil, fmt.Errorf("%s: want a JSON list of {\"role\", \"content\"} messages or an object with \"messages\": %v", path, err)
		}
		raw = obj.Messages
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: no messages", path)
	}
	msgs := make([]chat.Message, len(raw))
	for i, m := range raw {
		role, ok1 := m["role"].(string)
		content, ok2 := m["content"].(string)
		switch {
		case !ok1 || role == "":
			return nil, fmt.Errorf("%s: message %d: want a non-empty string \"role\"", path, i)
		case !ok2:
			return nil, fmt.Errorf("%s: message %d: want a string \"content\"", path, i)
		}
		msgs[i] = chat.Message{Role: role, Content: content}
	}
	return msgs, nil
}

// answer generates after prompt, streaming the text (or printing one JSON line), and
// returns the text of the answer.
func (o *options) answer(ctx context.Context, sess *llama.Session, prompt []int, promptText string) (string, error) {
	stream, err := generate.NewTextStream(o.tok, prompt)
	if err != nil {
		return "", err
	}
	var text strings.Builder
	isEOS := func(id int) bool { return slices.Contains(o.eos, id) }
	emit := func(piece string) error {
		text.WriteString(piece)
		if o.json || piece == "" {
			return nil
		}
		_, err := io.WriteString(o.stdout, piece)
		return err
	}
	start := sess.Positions
	res, genErr := generate.Generate(ctx, sess, prompt, generate.Options{
		Sampling:     o.sampling,
		MaxNewTokens: o.maxNewTokens,
		MaxLength:    o.maxLen,
		EOS:          o.eos,
		OnToken: func(id int) error {
			if isEOS(id) {
				return nil
			}
			if id >= o.tok.VocabSize() {
				return fmt.Errorf("the model generated token %d, which the tokenizer (%d ids) has no text for", id, o.tok.VocabSize())
			}
			piece, err := stream.Add(id)
			if err != nil {
				return err
			}
			return emit(piece)
		},
	})
	if res != nil {
		rest, err := stream.Flush()
		if err == nil {
			err = emit(rest)
		}
		if genErr == nil {
			genErr = err
		}
	}
	if res == nil || (genErr != nil && !errors.Is(genErr, context.Canceled)) {
		return "", genErr
	}
	o.turn++
	answer := text.String()
	computed := sess.Positions - start
	if o.json {
		err := cli.WriteJSON(o.stdout, map[string]any{
			"event":               "generation",
			"turn":                o.turn,
			"model":               o.model,
			"prompt":              promptText,
			"prompt_ids":          prompt,
			"prompt_tokens":       len(prompt),
			"ids":                 res.Tokens,
			"text":                answer,
			"new_tokens":          len(res.Tokens),
			"stop":                string(res.Stop),
			"eos_ids":             o.eos,
			"kv_cache":            !o.noCache,
			"positions_computed":  computed,
			"prompt_seconds":      res.PromptTime.Seconds(),
			"decode_seconds":      res.DecodeTime.Seconds(),
			"decode_tokens_per_s": res.DecodeTokensPerSecond(),
			"temperature":         o.sampling.Temperature,
			"top_k":               o.sampling.TopK,
			"top_p":               o.sampling.TopP,
			"seed":                o.sampling.Seed,
		})
		if err != nil {
			return "", err
		}
	} else if !strings.HasSuffix(answer, "\n") {
		fmt.Fprintln(o.stdout)
	}
	cache := "KV cache"
	if o.noCache {
		cache = "no KV cache"
	}
	fmt.Fprintf(o.stderr, "generate: %d tokens (stop: %s); prompt %d tokens in %.3fs; %.1f tokens/s after it (%s, %d positions computed)\n",
		len(res.Tokens), res.Stop, len(prompt), res.PromptTime.Seconds(), res.DecodeTokensPerSecond(), cache, computed)
	if genErr != nil {
		return answer, cli.Interrupted(ctx, "")
	}
	return answer, nil
}

// runInteractive answers one user message per line of stdin, keeping the
// conversation; each turn reuses the cached positions of the conversation so far.
func (o *options) runInteractive(ctx context.Context) error {
	if o.system != "" {
		o.history = append(o.history, chat.Message{Role: "system", Content: o.system})
	}
	sess, err := o.lm.NewSession(llama.SessionOptions{NoCache: o.noCache})
	if err != nil {
		return err
	}
	defer sess.Close()
	in := bufio.NewScanner(stdin)
	in.Buffer(nil, 1<<20)
	fmt.Fprintln(o.stderr, "generate: one message per line; end with Ctrl-D")
	for {
		fmt.Fprint(o.stderr, "> ")
		if !in.Scan() {
			break
		}
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		msgs := append(slices.Clone(o.history), chat.Message{Role: "user", Content: line})
		text, err := o.tmpl.Render(msgs, true)
		if err != nil {
			return err
		}
		ids, err := o.encode(text, false)
		if err != nil {
			return fmt.Errorf("turn %d: %w", o.turn+1, err)
		}
		answer, err := o.answer(ctx, sess, ids, text)
		if err != nil {
			return err
		}
		o.history = append(msgs, chat.Message{Role: "assistant", Content: answer})
	}
	if err := in.Err(); err != nil && !errors.Is(err, fs.ErrClosed) {
		return fmt.Errorf("reading stdin: %w", err)
	}
	fmt.Fprintln(o.stderr)
	return nil
}
