// Command eval measures a checkpoint: the perplexity of a Llama model on text
// files (a sliding window with a stride, as in Hugging Face's "Perplexity of
// fixed-length models"), or the GLUE validation scores of a RoBERTa sequence
// classifier.
//
//	eval --model runs/llama60m/blockllm/final --ppl 'c4/en/c4-validation.0000*-of-00008.json.gz' --max-tokens 1000000
//	eval --model runs/glue/sst2/blockllm --task sst2 --data glue_data/
//
// Text files are C4 JSON lines (.json, .jsonl, optionally .gz/.zst; the "text"
// field) or plain text; the documents of each file are joined with blank
// lines into one token stream, as the Hugging Face guide does with
// WikiText-2. Run with -h for every flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/blockllm/blockllm-go/cmd/internal/cli"
	"github.com/blockllm/blockllm-go/eval"
	"github.com/blockllm/blockllm-go/eval/c4"
	"github.com/blockllm/blockllm-go/eval/glue"
	"github.com/blockllm/blockllm-go/eval/metrics"
	"github.com/blockllm/blockllm-go/eval/report"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/nn"
	"github.com/blockllm/blockllm-go/hf/roberta"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

func main() { cli.Main("eval", run) }

type options struct {
	cli.Runtime
	model, tokenizer, ppl, task, data, split string
	seqLen, stride, batch, maxLen            int
	maxTokens                                int
	json, fused                              bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := cli.NewFlagSet("eval", "Usage:\n  eval --model DIR --ppl FILES [--seq-len N --stride N --max-tokens N]\n"+
		"  eval --model DIR --task TASK --data DIR [--split validation --max-len N]\n", stderr)
	fs.StringVar(&o.model, "model", "", "Hugging Face checkpoint `DIR` (Llama for --ppl, RoBERTa classifier for --task)")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer.json `FILE` or directory (default: the model directory)")
	fs.StringVar(&o.ppl, "ppl", "", "measure perplexity on these comma-separated files, directories or globs (C4 JSON lines or text)")
	fs.IntVar(&o.seqLen, "seq-len", 0, "perplexity window length in tokens (0: max_position_embeddings, at most 1024)")
	fs.IntVar(&o.stride, "stride", 0, "perplexity window stride (0: half the window; equal to --seq-len: disjoint windows)")
	fs.IntVar(&o.maxTokens, "max-tokens", 0, "use only the first N tokens of each file (0: all)")
	fs.StringVar(&o.task, "task", "", "GLUE task to score: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, a comma list, or all (all but wnli)")
	fs.StringVar(&o.data, "data", "", "GLUE data `DIR` (GLUE TSV distribution or Hugging Face parquet/jsonl layout)")
	fs.StringVar(&o.split, "split", "validation", "GLUE split to score (MNLI: validation scores matched and mismatched)")
	fs.IntVar(&o.maxLen, "max-len", 128, "GLUE: truncate inputs to this many tokens")
	fs.IntVar(&o.batch, "batch-size", 8, "sequences per forward pass")
	o.Runtime.Register(fs, "", "weight dtype: f32 or bf16 (default: the checkpoint's)")
	fs.BoolVar(&o.fused, "fused-sdpa", true, "use libtorch's fused attention where available")
	fs.BoolVar(&o.json, "json", false, "write the results as JSON lines instead of a table")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := cli.NoArgs(fs); err != nil {
		return nil, err
	}
	switch {
	case o.model == "":
		fs.Usage()
		return nil, fmt.Errorf("--model DIR is required")
	case (o.ppl == "") == (o.task == ""):
		return nil, fmt.Errorf("give exactly one of --ppl FILES and --task T")
	case o.task != "" && o.data == "":
		return nil, fmt.Errorf("--task needs --data DIR (the GLUE data)")
	case o.seqLen < 0 || o.stride < 0 || o.maxTokens < 0 || o.batch < 1 || o.maxLen < 3:
		return nil, fmt.Errorf("--seq-len, --stride and --max-tokens must not be negative, --batch-size must be positive, --max-len at least 3")
	}
	return o, nil
}

func run(_ context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	dev, err := o.Runtime.Setup()
	if err != nil {
		return err
	}
	var dt torch.DType
	if o.DType != "" {
		if dt, err = torch.ParseDType(o.DType); err != nil {
			return fmt.Errorf("--dtype: %w", err)
		}
	}
	tok, _, err := cli.LoadTokenizer(o.tokenizer, o.model, "")
	if err != nil {
		return err
	}
	mt, err := config.ModelType(o.model)
	if err != nil {
		return err
	}
	if o.ppl != "" {
		if mt != "llama" {
			return fmt.Errorf("--ppl needs a causal LM (llama); %s has model_type %q", o.model, mt)
		}
		return runPPL(o, tok, dev, dt, stdout, stderr)
	}
	if mt != "roberta" && mt != "llama" {
		return fmt.Errorf("--task needs a RoBERTa or Llama sequence classifier; %s has model_type %q", o.model, mt)
	}
	return runGLUE(o, mt, tok, dev, dt, stdout, stderr)
}

func runPPL(o *options, tok *tokenizer.Tokenizer, dev torch.Device, dt torch.DType, stdout, stderr io.Writer) error {
	m, err := llama.Load(o.model, llama.Options{DType: dt, Device: dev, FusedSDPA: o.fused})
	if err != nil {
		return err
	}
	defer m.Close()
	if v := tok.VocabSize(); v > m.Cfg.VocabSize {
		return fmt.Errorf("the tokenizer has %d ids but the model's vocab_size is %d", v, m.Cfg.VocabSize)
	}
	win := o.seqLen
	if win == 0 {
		win = min(m.Cfg.MaxPositionEmbeddings, 1024)
	}
	if win > m.Cfg.MaxPositionEmbeddings {
		return fmt.Errorf("--seq-len %d exceeds the model's max_position_embeddings %d", win, m.Cfg.MaxPositionEmbeddings)
	}
	stride := o.stride
	if stride == 0 {
		stride = max(1, win/2)
	}
	if stride > win {
		return fmt.Errorf("--stride %d exceeds the window (--seq-len %d)", stride, win)
	}
	r, err := c4.Open(cli.SplitList(o.ppl), nil)
	if err != nil {
		return err
	}
	files := r.Files()
	r.Close()
	var rows []report.PPLRow
	for _, f := range files {
		ids, err := fileTokens(f, tok, o.maxTokens)
		if err != nil {
			return err
		}
		if len(ids) < 2 {
			return fmt.Errorf("%s: %d tokens, too few for perplexity", f, len(ids))
		}
		n, err := eval.SlidingWindow(m, ids, eval.WindowOptions{MaxLen: win, Stride: stride, BatchSize: o.batch})
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		rows = append(rows, report.PPLRow{Name: f, NLL: n})
		if o.json {
			if err := cli.WriteJSON(stdout, map[string]any{"event": "ppl", "file": f, "tokens": n.Tokens, "nll_sum": n.Sum,
				"mean_nll": n.Mean(), "ppl": n.Perplexity(), "seq_len": win, "stride": stride}); err != nil {
				return err
			}
		}
	}
	if o.json {
		var total eval.NLL
		for _, r := range rows {
			total.Add(r.NLL)
		}
		return cli.WriteJSON(stdout, map[string]any{"event": "ppl_total", "tokens": total.Tokens, "mean_nll": total.Mean(),
			"ppl": total.Perplexity(), "seq_len": win, "stride": stride, "model": o.model})
	}
	fmt.Fprintf(stdout, "Perplexity of %s (window %d, stride %d):\n", o.model, win, stride)
	return report.WritePPLTable(stdout, rows)
}

// fileTokens reads the documents of one file and tokenizes them one by one (the first
// with the tokenizer's special tokens, e.g. a leading <s>; the others preceded by a
// blank line "\n\n"), concatenating the ids, until maxTokens (0: no limit) are reached.
// Documents are tokenized in pieces (tokenizer.EncodeStream): memory follows the ids
// kept, not the documents' length, and reading stops once maxTokens are there.
func fileTokens(file string, tok *tokenizer.Tokenizer, maxTokens int) ([]int, error) {
	r, err := c4.Open([]string{file}, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	prefix, suffix, err := tok.SpecialAffixes()
	if err != nil {
		return nil, err
	}
	ids := append([]int(nil), prefix...)
	full := func() bool { return maxTokens > 0 && len(ids) >= maxTokens }
	for first := true; !full(); first = false {
		doc, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		text := doc.Text
		if !first {
			text = "\n\n" + text
		}
		err = tok.EncodeStream(text, 0, func(part []int) bool {
			ids = append(ids, part...)
			return !full()
		})
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", doc.File, doc.Line, err)
		}
		if first {
			ids = append(ids, suffix...)
		}
	}
	if maxTokens > 0 && len(ids) > maxTokens {
		ids = ids[:maxTokens]
	}
	return ids, nil
}

// glueModel is a fine-tuned sequence classifier: RoBERTa or Llama with a score head.
type glueModel interface {
	nn.Model
	NumLabels() int
}

// loadClassifier loads the classifier of model type mt, the parameters it had to
// initialise (none for a fine-tuned model) and its pad id.
func loadClassifier(o *options, mt string, dev torch.Device, dt torch.DType) (glueModel, []string, int, error) {
	if mt == "llama" {
		m, err := llama.LoadClassifier(o.model, llama.Options{DType: dt, Device: dev, FusedSDPA: o.fused}, nil, 0)
		if err != nil {
			return nil, nil, 0, err
		}
		pad := 0
		if m.Cfg.PadTokenID != nil && *m.Cfg.PadTokenID >= 0 {
			pad = *m.Cfg.PadTokenID
		} else if len(m.Cfg.EOSTokenIDs) > 0 {
			pad = m.Cfg.EOSTokenIDs[0]
		}
		return m, m.NewlyInitialized, pad, nil
	}
	m, err := roberta.Load(o.model, roberta.Options{DType: dt, Device: dev, FusedSDPA: o.fused})
	if err != nil {
		return nil, nil, 0, err
	}
	return m, m.NewlyInitialized, m.Cfg.PadTokenID, nil
}

func runGLUE(o *options, mt string, tok *tokenizer.Tokenizer, dev torch.Device, dt torch.DType, stdout, stderr io.Writer) error {
	tasks, err := glue.ParseTasks(o.task)
	if err != nil {
		return fmt.Errorf("--task: %w", err)
	}
	row := report.GLUERow{Method: o.model}
	for _, t := range tasks {
		m, fresh, modelPad, err := loadClassifier(o, mt, dev, dt)
		if err != nil {
			return err
		}
		if m.NumLabels() != t.NumLabels {
			m.Close()
			return fmt.Errorf("%s has %d outputs, task %s needs %d (evaluate a model fine-tuned on %s)", o.model, m.NumLabels(), t.Name, t.NumLabels, t.Name)
		}
		if len(fresh) > 0 {
			m.Close()
			return fmt.Errorf("%s has no trained classification head (missing %s)", o.model, strings.Join(fresh, ", "))
		}
		splits := []string{o.split}
		if t.Name == "mnli" && (o.split == "validation" || o.split == "dev") {
			splits = []string{"validation_matched", "validation_mismatched"}
		}
		for _, sp := range splits {
			ds, err := glue.Load(o.data, t.Name, sp)
			if err != nil {
				m.Close()
				return err
			}
			ex, err := glue.Encode(tok, ds, o.maxLen)
			if err != nil {
				m.Close()
				return err
			}
			pad := tok.PAD()
			if pad < 0 {
				pad = modelPad
			}
			sc, err := eval.ScoreGLUE(m, ds, ex, o.batch, pad)
			if err != nil {
				m.Close()
				return err
			}
			row.Scores = append(row.Scores, sc)
			if o.json {
				if err := cli.WriteJSON(stdout, map[string]any{"event": "glue", "task": sc.Task, "split": ds.Split,
					"score": sc.Score, "metrics": sc.Metrics, "n": sc.N, "model": o.model}); err != nil {
					m.Close()
					return err
				}
			}
		}
		_, peak := torch.MemStats(dev)
		row.PeakBytes = max(row.PeakBytes, peak)
		m.Close()
	}
	if o.json {
		avg, err := metrics.Average(row.Scores)
		if err != nil {
			return err
		}
		return cli.WriteJSON(stdout, map[string]any{"event": "glue_average", "average": avg, "model": o.model})
	}
	return report.WriteGLUETable(stdout, []report.GLUERow{row})
}
