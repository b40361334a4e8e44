// Command pretrain pretrains a Llama causal language model on C4-format text
// (JSON lines with a "text" field, optionally .gz or .zst, many shards,
// streamed; plain text files too) with BlockLLM or the baselines (full AdamW,
// BAdam, LISA), measures validation perplexity before, during and after
// training, writes checkpoints it can resume from, and prints a table of the
// results.
//
// With no flags it runs a demo: a tiny Llama (hidden 128, 4 layers, the
// embedded fortunes tokenizer with 1024 ids) on the embedded Debian fortunes
// shards, with BlockLLM and full AdamW, for a few minutes on two CPU cores.
//
// Real data (GaLore's Llama-60m setting):
//
//	pretrain --model llama-60m --tokenizer t5-base/tokenizer.json \
//	  --data 'c4/en/c4-train.*.json.gz' --val-data 'c4/en/c4-validation.00000-of-00008.json.gz' \
//	  --seq-len 256 --batch-size 128 --grad-accum 4 --steps 10000 --lr 1e-3 --out runs/llama60m
//
// Run with -h for every flag.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval"
	"github.com/blockllm/blockllm-go/eval/c4"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pretrain:", err)
		os.Exit(1)
	}
}

// demoConfig is the model of the demo run: a Llama of hidden size 128 with 4
// layers (about 1M parameters) over the embedded fortunes tokenizer's 1024 ids.
const demoConfig = `{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "vocab_size": 1024,
  "hidden_size": 128,
  "intermediate_size": 344,
  "num_hidden_layers": 4,
  "num_attention_heads": 4,
  "max_position_embeddings": 1024,
  "rms_norm_eps": 1e-06,
  "rope_theta": 10000.0,
  "initializer_range": 0.02,
  "tie_word_embeddings": false,
  "hidden_act": "silu",
  "bos_token_id": 1,
  "eos_token_id": 2
}`

type options struct {
	model, tokenizer, data, valData, methods string
	valFraction                              float64
	sparsity                                 float64
	patience                                 int
	eligible                                 string
	steps, seqLen, batch, gradAccum          int
	lr, minLRRatio, clip, weightDecay        float64
	warmup                                   int
	schedule                                 string
	evalEvery, evalBlocks, evalBatch         int
	checkpointEvery, keep                    int
	out, resume, plot                        string
	json                                     bool
	device, dtype                            string
	threads                                  int
	seed                                     uint64
	switchEvery, lisaLayers                  int
	progress                                 bool
	fused                                    bool
	recompute, recomputeMLP, fusedAdam       bool
	stepInBackward                           bool
	lossChunk, padMLP                        int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("pretrain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pretrain [flags]\n\n"+
			"Pretrains a Llama model on C4-format text with BlockLLM and baselines; prints validation perplexity.\n"+
			"With no flags: a demo on the embedded fortunes text with a tiny model (a few minutes on 2 CPU cores).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.model, "model", "", "`MODEL`: a preset ("+strings.Join(config.LlamaPresets(), ", ")+
		"), a config.json, or a Hugging Face Llama checkpoint directory (continues training); empty: the demo's tiny Llama")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer.json `FILE` or directory (default: the model directory; demo: embedded); a preset's vocab_size becomes the tokenizer's")
	fs.StringVar(&o.data, "data", "", "training text: comma-separated files, directories or globs of C4 JSON lines (.json, .jsonl, .gz, .zst) or text; empty: the embedded fortunes")
	fs.StringVar(&o.valData, "val-data", "", "validation text, same forms (default: the embedded fortunes validation shard for the demo, else a --val-fraction split of --data)")
	fs.Float64Var(&o.valFraction, "val-fraction", 0.005, "fraction of --data documents held out for validation when --val-data is empty")
	fs.StringVar(&o.methods, "method", "blockllm,adamw", "training methods, a comma list of blockllm, adamw, badam, lisa")
	fs.Float64Var(&o.sparsity, "sparsity", 0, "BlockLLM sparsity: the fraction of eligible parameters left frozen (0: 0.9, 0.5 for the demo)")
	fs.IntVar(&o.patience, "patience", 0, "BlockLLM patience m: the loss window of the reselection trigger (0: 100, 20 for the demo)")
	fs.StringVar(&o.eligible, "eligible", "", "BlockLLM eligible tensors: comma-separated regular expressions over parameter names\n"+
		"(empty: '.*' (all tensors) for a new model from a preset or config.json, whose embeddings must train;\n"+
		"all but embeddings and LM head for a checkpoint)")
	fs.IntVar(&o.steps, "steps", 0, "optimizer steps (0: 300 for the demo, 10000 otherwise)")
	fs.IntVar(&o.seqLen, "seq-len", 0, "tokens per training sequence (0: 64 for the demo, 256 otherwise)")
	fs.IntVar(&o.batch, "batch-size", 0, "sequences per micro-batch (0: 16 for the demo, 64 otherwise)")
	fs.IntVar(&o.gradAccum, "grad-accum", 1, "micro-batches per optimizer step")
	fs.Float64Var(&o.lr, "lr", 0, "peak learning rate (0: 3e-3 for the demo, 1e-3 otherwise)")
	fs.IntVar(&o.warmup, "warmup", -1, "warmup steps (-1: 10% of --steps)")
	fs.StringVar(&o.schedule, "schedule", "cosine", "learning-rate schedule after warmup: constant, linear or cosine")
	fs.Float64Var(&o.minLRRatio, "min-lr-ratio", 0.1, "final learning rate as a fraction of the peak (linear and cosine)")
	fs.Float64Var(&o.clip, "grad-clip", 1.0, "clip the global gradient norm (0: off)")
	fs.Float64Var(&o.weightDecay, "weight-decay", 0, "AdamW decoupled weight decay")
	fs.IntVar(&o.evalEvery, "eval-every", 0, "measure validation perplexity every N steps (0: 5 times per run)")
	fs.IntVar(&o.evalBlocks, "eval-blocks", 0, "validation blocks of --seq-len tokens (0: 200 for the demo, 1000 otherwise)")
	fs.IntVar(&o.evalBatch, "eval-batch-size", 0, "validation blocks per forward pass (0: --batch-size)")
	fs.IntVar(&o.checkpointEvery, "checkpoint-every", 0, "write a checkpoint every N steps under --out (0: only at the end and on interrupt)")
	fs.IntVar(&o.keep, "keep-checkpoints", 2, "keep only the newest N checkpoints (0: all)")
	fs.StringVar(&o.out, "out", "", "output `DIR`: checkpoints in DIR/<method>/checkpoints, the final model (Hugging Face layout) in DIR/<method>/final")
	fs.StringVar(&o.resume, "resume", "", "resume from a checkpoint `DIR`, or 'latest' (the newest under --out for each method)")
	fs.BoolVar(&o.json, "json", false, "write JSON lines (steps, selections, evaluations, results) to stdout instead of the table")
	fs.StringVar(&o.plot, "plot", "", "write a PNG of the training loss curves to `FILE`")
	fs.StringVar(&o.device, "device", "cpu", "device: cpu, cuda or cuda:N")
	fs.StringVar(&o.dtype, "dtype", "f32", "weight dtype: f32 or bf16")
	fs.BoolVar(&o.fused, "fused-sdpa", true, "use libtorch's fused attention where available")
	fs.IntVar(&o.threads, "threads", 0, "CPU threads for libtorch (0: all cores)")
	fs.BoolVar(&o.recompute, "recompute", false, "recompute each decoder layer's activations in backward (gradient checkpointing)")
	fs.BoolVar(&o.recomputeMLP, "recompute-mlp", false, "recompute only the MLPs in backward (keeps their input, not gate and up)")
	fs.IntVar(&o.lossChunk, "loss-chunk", 0, "compute the training loss fused with the LM head, this many positions at a time (0: whole logits)")
	fs.IntVar(&o.padMLP, "pad-mlp", -1, "round the MLP width up to a multiple of this inside forward (zero-padded weights: the same\n"+
		"function; aligned rows for GPU matrix kernels); -1: 64 on CUDA, off on the CPU; 0: off")
	fs.BoolVar(&o.stepInBackward, "step-in-backward", false, "update each trainable tensor during backward, as soon as its gradient is\n"+
		"complete (AdamW and BlockLLM; needs --grad-clip 0 and --grad-accum 1)")
	fs.BoolVar(&o.fusedAdam, "fused-adamw", true, "update the tensors in one multi-tensor AdamW call where libtorch has the fused kernel\n"+
		"(CUDA 2.1+, CPU 2.4+) and the moments have the weights' dtype; elsewhere the same per-tensor math")
	fs.Uint64Var(&o.seed, "seed", 42, "random seed (initialisation, BAdam/LISA choices)")
	fs.IntVar(&o.switchEvery, "switch-every", 0, "BAdam/LISA: steps between block switches (0: their defaults, 100 and 50)")
	fs.IntVar(&o.lisaLayers, "lisa-layers", 0, "LISA: layers trained at a time (0: 2)")
	fs.BoolVar(&o.progress, "progress", true, "show a progress bar on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	if o.lossChunk < 0 || o.padMLP < -1 {
		return nil, fmt.Errorf("--loss-chunk must not be negative and --pad-mlp not below -1")
	}
	if o.stepInBackward && (o.clip > 0 || o.gradAccum > 1) {
		return nil, fmt.Errorf("--step-in-backward needs --grad-clip 0 and --grad-accum 1 (clipping and accumulation need every gradient first)")
	}
	demo := o.data == ""
	def := func(v *int, demoV, realV int) {
		if *v == 0 {
			*v = realV
			if demo {
				*v = demoV
			}
		}
	}
	def(&o.steps, 300, 10000)
	def(&o.seqLen, 64, 256)
	def(&o.batch, 16, 64)
	def(&o.evalBlocks, 200, 1000)
	if o.sparsity == 0 {
		o.sparsity = blockllm.DefaultPretrainSparsity
		if demo {
			o.sparsity = 0.5
		}
	}
	if o.patience == 0 {
		o.patience = blockllm.DefaultPatience
		if demo {
			o.patience = 20
		}
	}
	if o.lr == 0 {
		o.lr = 1e-3
		if demo {
			o.lr = 3e-3
		}
	}
	if o.evalBatch == 0 {
		o.evalBatch = o.batch
	}
	if o.warmup < 0 {
		o.warmup = o.steps / 10
	}
	if o.evalEvery == 0 {
		o.evalEvery = max(1, o.steps/5)
	}
	switch {
	case o.steps < 1 || o.seqLen < 2 || o.batch < 1 || o.gradAccum < 1 || o.evalBlocks < 1 || o.evalBatch < 1:
		return nil, fmt.Errorf("--steps, --batch-size, --grad-accum, --eval-blocks and --eval-batch-size must be positive and --seq-len at least 2")
	case !(o.lr > 0) || math.IsInf(o.lr, 0):
		return nil, fmt.Errorf("--lr %g must be positive", o.lr)
	case o.sparsity < 0 || o.sparsity >= 1:
		return nil, fmt.Errorf("--sparsity %g outside [0, 1)", o.sparsity)
	case o.patience < 0:
		return nil, fmt.Errorf("--patience %d must be positive", o.patience)
	case o.warmup > o.steps:
		return nil, fmt.Errorf("--warmup %d exceeds --steps %d", o.warmup, o.steps)
	case o.valFraction <= 0 || o.valFraction >= 1:
		return nil, fmt.Errorf("--val-fraction %g outside (0, 1)", o.valFraction)
	case o.checkpointEvery < 0 || o.keep < 0:
		return nil, fmt.Errorf("--checkpoint-every and --keep-checkpoints must not be negative")
	case o.resume != "" && o.out == "" && o.resume == "latest":
		return nil, fmt.Errorf("--resume latest needs --out DIR (where the checkpoints are)")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	dev, err := eval.Setup(o.threads, o.device)
	if err != nil {
		return err
	}
	dt, err := eval.ParseTrainDType(o.dtype)
	if err != nil {
		return err
	}
	sched, err := blockllm.ParseScheduleKind(o.schedule)
	if err != nil {
		return fmt.Errorf("--schedule: %w", err)
	}
	methods, err := eval.ParseMethods(o.methods)
	if err != nil {
		return fmt.Errorf("--method: %w", err)
	}
	if o.resume != "" && o.resume != "latest" && len(methods) > 1 {
		return fmt.Errorf("--resume %s names one checkpoint; pass a single --method (or --resume latest)", o.resume)
	}
	info := stdout
	if o.json {
		info = stderr
	}
	demoModel, demoData := o.model == "", o.data == ""
	tok, tokJSON, err := loadTokenizer(o)
	if err != nil {
		return err
	}
	if demoModel || demoData {
		var parts []string
		if demoModel {
			parts = append(parts, "model: a tiny randomly initialised Llama (4 layers, hidden 128, vocabulary 1024 of the embedded fortunes tokenizer; "+
				"BlockLLM trains from scratch with sparsity 0.5, every tensor eligible, patience 20)")
		}
		if demoData {
			parts = append(parts, "data: the embedded Debian fortunes text in C4 layout, not C4")
		}
		fmt.Fprintln(info, "pretrain: DEMO run —", strings.Join(parts, "; "))
	}

	trainOpen, valOpen, err := dataSources(o)
	if err != nil {
		return err
	}
	packOpts := func(split c4.Split, overlap int) c4.PackOptions {
		p := c4.PackOptions{BlockLen: o.seqLen, Overlap: overlap, Split: split, Validation: o.valFraction}
		if id := tok.BOS(); id >= 0 {
			p.BOS = []int{id}
		}
		if id := tok.EOS(); id >= 0 {
			p.EOS = []int{id}
		}
		return p
	}
	encode := func(text string) ([]int, error) { return tok.EncodeIDs(text, false) }
	valBlocks, err := readValBlocks(valOpen, encode, packOpts, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(info, "pretrain: validation: %d blocks of %d tokens\n", len(valBlocks), o.seqLen)

	var jsonOut io.Writer
	if o.json {
		jsonOut = stdout
	}
	eligible := splitList(o.eligible)
	if len(eligible) == 0 && !isCheckpoint(o.model) {
		eligible = []string{".*"} // a new model: its embeddings must train too
	}
	var rows []eval.PretrainRow
	var curves []eval.Curve
	interrupted := false
	for _, method := range methods {
		mc := eval.MethodConfig{Method: method, Adam: blockllm.AdamConfig{WeightDecay: o.weightDecay, StateF32: dt != torch.F32, Fused: o.fusedAdam},
			Sparsity: o.sparsity, Patience: o.patience, Eligible: eligible, SwitchEvery: o.switchEvery,
			LISALayers: o.lisaLayers, Seed: o.seed}
		row, losses, status, err := runOne(ctx, o, mc, dev, dt, tok, tokJSON, trainOpen, valBlocks, encode, packOpts,
			blockllm.Schedule{Kind: sched, Warmup: o.warmup, MinRatio: o.minLRRatio}, info, jsonOut, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		rows = append(rows, row)
		curves = append(curves, eval.LossCurve(row.Method, losses))
		if status == blockllm.Interrupted {
			interrupted = true
			break
		}
	}
	if o.plot != "" {
		title := "training loss"
		if demoData {
			title += " (demo data)"
		}
		if err := eval.PlotCurves(o.plot, curves, eval.PlotOptions{Title: title, Smooth: 10}); err != nil {
			return err
		}
		fmt.Fprintf(info, "pretrain: wrote %s\n", o.plot)
	}
	if o.json {
		for _, r := range rows {
			if err := writeJSON(stdout, map[string]any{"event": "result", "method": r.Method, "steps": r.Steps,
				"tokens": r.Tokens, "val_ppl_before": jsonFloat(r.PPLBefore), "val_ppl_after": jsonFloat(r.PPLAfter),
				"optimizer_state_bytes": r.OptimizerBytes, "peak_bytes": r.PeakBytes, "elapsed_s": r.Elapsed.Seconds(),
				"demo": demoModel || demoData}); err != nil {
				return err
			}
		}
	} else {
		fmt.Fprintln(stdout)
		if demoModel || demoData {
			fmt.Fprintln(stdout, "Validation perplexity (DEMO data and model, not C4 numbers):")
		} else {
			fmt.Fprintln(stdout, "Validation perplexity:")
		}
		if err := eval.WritePretrainTable(stdout, rows); err != nil {
			return err
		}
	}
	if interrupted {
		return fmt.Errorf("interrupted (resume with --resume latest --out %s)", o.out)
	}
	return nil
}

// jsonFloat maps NaN to nil (JSON null).
func jsonFloat(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func loadTokenizer(o *options) (*tokenizer.Tokenizer, []byte, error) {
	path := o.tokenizer
	if path == "" && o.model != "" {
		if st, err := os.Stat(o.model); err == nil {
			if st.IsDir() {
				path = o.model
			} else {
				path = filepath.Dir(o.model) // next to a config.json
			}
		}
	}
	if path == "" {
		if o.model != "" {
			return nil, nil, fmt.Errorf("--model %s is a preset: pass --tokenizer FILE (a Hugging Face tokenizer.json)", o.model)
		}
		b, err := data.Tokenizer(data.LlamaTinyTokenizer)
		if err != nil {
			return nil, nil, err
		}
		t, err := tokenizer.FromJSON(b)
		return t, b, err
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "tokenizer.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenizer: %w (pass --tokenizer FILE, a Hugging Face tokenizer.json)", err)
	}
	t, err := tokenizer.FromJSON(b)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, b, nil
}

// opener opens a fresh document reader and tells which split of it to use.
type opener struct {
	open  func() (*c4.Reader, error)
	split c4.Split
	desc  string
}

func dataSources(o *options) (train, val opener, err error) {
	if o.data == "" {
		fsys := data.Fortunes()
		train = opener{func() (*c4.Reader, error) { return c4.OpenFS(fsys, []string{data.FortunesTrain}, nil) }, c4.SplitAll, "fortunes train shard"}
		val = opener{func() (*c4.Reader, error) { return c4.OpenFS(fsys, []string{data.FortunesValidation}, nil) }, c4.SplitAll, "fortunes validation shard"}
		if o.valData == "" {
			return train, val, nil
		}
	} else {
		pats := splitList(o.data)
		if len(pats) == 0 {
			return train, val, fmt.Errorf("--data: no file pattern")
		}
		train = opener{func() (*c4.Reader, error) { return c4.Open(pats, nil) }, c4.SplitAll, o.data}
	}
	if o.valData != "" {
		pats := splitList(o.valData)
		val = opener{func() (*c4.Reader, error) { return c4.Open(pats, nil) }, c4.SplitAll, o.valData}
		return train, val, nil
	}
	// Hold out a hashed fraction of the training documents.
	train.split = c4.SplitTrain
	val = opener{train.open, c4.SplitValidation, fmt.Sprintf("%.3g%% of %s", 100*o.valFraction, o.data)}
	return train, val, nil
}

// readValBlocks packs up to o.evalBlocks validation blocks with a one-token
// overlap, so that every token after the first is predicted exactly once.
func readValBlocks(val opener, encode func(string) ([]int, error), packOpts func(c4.Split, int) c4.PackOptions, o *options) ([][]int, error) {
	r, err := val.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p, err := c4.NewPackerErr(r, encode, packOpts(val.split, 1))
	if err != nil {
		return nil, err
	}
	var blocks [][]int
	for len(blocks) < o.evalBlocks {
		b, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("validation data (%s) is too short for one block of %d tokens", val.desc, o.seqLen)
	}
	return blocks, nil
}

// stream yields training blocks forever, starting a new epoch at the end of
// the data; its position (epoch and packer state) is checkpointed.
type stream struct {
	p         *c4.Packer
	epoch     int
	thisEpoch int64
	desc      string
}

type streamState struct {
	Epoch  int      `json:"epoch"`
	Packer c4.State `json:"packer"`
}

func (s *stream) next() ([]int, error) {
	b, err := s.p.Next()
	if errors.Is(err, io.EOF) {
		if s.thisEpoch == 0 {
			return nil, fmt.Errorf("training data (%s) is too short for one block", s.desc)
		}
		s.epoch++
		s.thisEpoch = 0
		if err := s.p.Restore(c4.State{}); err != nil {
			return nil, err
		}
		b, err = s.p.Next()
	}
	if err != nil {
		return nil, err
	}
	s.thisEpoch++
	return b, nil
}

func (s *stream) position() (json.RawMessage, error) {
	return json.Marshal(streamState{Epoch: s.epoch, Packer: s.p.State()})
}

func (s *stream) seek(raw json.RawMessage) error {
	var st streamState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("data position in checkpoint: %w", err)
	}
	if err := s.p.Restore(st.Packer); err != nil {
		return err
	}
	s.epoch, s.thisEpoch = st.Epoch, st.Packer.Blocks
	return nil
}

// newModel builds the model: a preset or config.json (random init) or a
// checkpoint directory (loaded).
func newModel(o *options, tok *tokenizer.Tokenizer, dev torch.Device, dt torch.DType, info io.Writer) (*llama.Model, error) {
	pad := o.padMLP
	if pad < 0 {
		pad = 0
		if dev != torch.CPU {
			pad = 64
		}
	}
	lo := llama.Options{DType: dt, Device: dev, FusedSDPA: o.fused, Recompute: o.recompute,
		RecomputeMLP: o.recomputeMLP, LossChunk: o.lossChunk, PadMLP: pad}
	name := o.model
	var c *config.LlamaConfig
	if name == "" {
		var err error
		if c, err = config.ParseLlama([]byte(demoConfig)); err != nil {
			return nil, err
		}
		return llama.New(c, lo, o.seed)
	}
	if st, err := os.Stat(name); err == nil {
		dir := name
		if !st.IsDir() {
			dir = filepath.Dir(name)
		}
		if st.IsDir() && hasWeights(dir) {
			return llama.Load(dir, lo)
		}
		if c, err = config.LoadLlama(name); err != nil {
			return nil, err
		}
	} else {
		p, perr := config.LlamaPreset(name)
		if perr != nil {
			return nil, fmt.Errorf("--model %s: not a file or directory, nor a preset (%s)", name, strings.Join(config.LlamaPresets(), ", "))
		}
		c = p
		if v := tok.VocabSize(); v != c.VocabSize {
			fmt.Fprintf(info, "pretrain: %s: vocab_size %d -> %d (the tokenizer's)\n", name, c.VocabSize, v)
			c.VocabSize = v
		}
		bos, eos := tok.BOS(), tok.EOS()
		if bos >= 0 {
			c.BOSTokenID = &bos
		}
		if eos >= 0 {
			c.EOSTokenIDs = []int{eos}
		}
	}
	return llama.New(c, lo, o.seed)
}

// isCheckpoint reports whether --model names a directory with weights.
func isCheckpoint(model string) bool {
	st, err := os.Stat(model)
	return err == nil && st.IsDir() && hasWeights(model)
}

func hasWeights(dir string) bool {
	for _, f := range []string{"model.safetensors", "model.safetensors.index.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

func runOne(ctx context.Context, o *options, mc eval.MethodConfig, dev torch.Device, dt torch.DType,
	tok *tokenizer.Tokenizer, tokJSON []byte, trainOpen opener, valBlocks [][]int, encode func(string) ([]int, error),
	packOpts func(c4.Split, int) c4.PackOptions, sched blockllm.Schedule, info, jsonOut, stderr io.Writer) (eval.PretrainRow, []float64, blockllm.Status, error) {
	start := time.Now()
	row := eval.PretrainRow{Method: eval.MethodLabel(mc), PPLBefore: math.NaN(), PPLAfter: math.NaN()}
	torch.ManualSeed(o.seed)
	m, err := newModel(o, tok, dev, dt, info)
	if err != nil {
		return row, nil, 0, err
	}
	defer m.Close()
	if v := tok.VocabSize(); v > m.Cfg.VocabSize {
		return row, nil, 0, fmt.Errorf("the tokenizer has %d ids but the model's vocab_size is %d", v, m.Cfg.VocabSize)
	}
	if o.seqLen > m.Cfg.MaxPositionEmbeddings {
		return row, nil, 0, fmt.Errorf("--seq-len %d exceeds the model's max_position_embeddings %d", o.seqLen, m.Cfg.MaxPositionEmbeddings)
	}
	opt, err := eval.NewOptimizer(m, mc)
	if err != nil {
		return row, nil, 0, err
	}
	defer opt.Close()
	r, err := trainOpen.open()
	if err != nil {
		return row, nil, 0, err
	}
	defer r.Close()
	p, err := c4.NewPackerErr(r, encode, packOpts(trainOpen.split, 0))
	if err != nil {
		return row, nil, 0, err
	}
	st := &stream{p: p, desc: trainOpen.desc}
	d := &blockllm.TokenBlocks{Batch: o.batch, Device: dev, NextBlock: st.next, Position: st.position, Seek: st.seek}

	valPPL := func() (float64, error) {
		var n eval.NLL
		var err error
		torch.NoGrad(func() { n, err = eval.BlocksNLL(m, valBlocks, o.evalBatch) })
		return n.Perplexity(), err
	}
	logs := &eval.LogCollector{Forward: jsonOut, Extra: map[string]any{"method": mc.Method}}
	cfg := blockllm.TrainConfig{
		Steps:          o.steps,
		GradAccum:      o.gradAccum,
		LR:             o.lr,
		Schedule:       sched,
		MaxGradNorm:    o.clip,
		StepInBackward: o.stepInBackward,
		EvalEvery:      o.evalEvery,
		Eval: func(step int) (map[string]float64, error) {
			ppl, err := valPPL()
			if err != nil {
				return nil, err
			}
			if !o.json {
				fmt.Fprintf(info, "\npretrain: %s step %d: validation perplexity %.2f\n", row.Method, step, ppl)
			}
			return map[string]float64{"val_ppl": ppl, "val_loss": math.Log(ppl)}, nil
		},
		KeepCheckpoints: o.keep,
		CheckpointEvery: o.checkpointEvery,
		Log:             logs,
	}
	if o.progress {
		cfg.Progress = stderr
	}
	var methodDir string
	if o.out != "" {
		methodDir = filepath.Join(o.out, mc.Method)
		cfg.CheckpointDir = filepath.Join(methodDir, "checkpoints")
		cfg.SaveExtra = func(dir string) error { return saveExtra(m, tokJSON, dir) }
	}
	tr, err := blockllm.NewTrainer(m, opt, d, cfg)
	if err != nil {
		return row, nil, 0, err
	}
	if o.resume != "" {
		dir := o.resume
		if dir == "latest" {
			if dir, err = blockllm.LatestCheckpoint(cfg.CheckpointDir); err != nil {
				return row, nil, 0, err
			}
		}
		if dir == "" {
			fmt.Fprintf(info, "pretrain: %s: no checkpoint under %s, starting from scratch\n", row.Method, cfg.CheckpointDir)
		} else {
			if err := tr.Resume(dir); err != nil {
				return row, nil, 0, err
			}
			fmt.Fprintf(info, "pretrain: %s: resumed from %s at step %d\n", row.Method, dir, tr.StepCount())
		}
	}
	before := tr.StepCount()
	if row.PPLBefore, err = valPPL(); err != nil {
		return row, nil, 0, err
	}
	fmt.Fprintf(info, "pretrain: %s: %d steps of %d sequences x %d tokens, lr %g; validation perplexity at step %d: %.2f\n",
		row.Method, o.steps, o.gradAccum*o.batch, o.seqLen, o.lr, before, row.PPLBefore)
	torch.ResetPeakMemory(dev)
	res, err := tr.Run(ctx)
	if err != nil {
		return row, nil, 0, err
	}
	row.Steps = res.Step
	row.Tokens = int64(res.Step-before) * int64(o.gradAccum*o.batch*o.seqLen)
	if n := len(res.Evals); n > 0 && res.Evals[n-1].Step == res.Step {
		row.PPLAfter = res.Evals[n-1].Metrics["val_ppl"]
	} else if row.PPLAfter, err = valPPL(); err != nil {
		return row, nil, 0, err
	}
	row.OptimizerBytes = max(logs.MaxOptimizerBytes(), res.Memory.OptimizerState)
	row.PeakBytes = max(logs.MaxPeakBytes(), res.Memory.Peak)
	if methodDir != "" && res.Status == blockllm.Completed {
		final := filepath.Join(methodDir, "final")
		if err := m.Save(final); err != nil {
			return row, nil, 0, err
		}
		if err := writeTokenizer(final, tokJSON); err != nil {
			return row, nil, 0, err
		}
		fmt.Fprintf(info, "pretrain: %s: saved %s\n", row.Method, final)
	}
	if res.Checkpoint != "" {
		fmt.Fprintf(info, "pretrain: %s: last checkpoint %s\n", row.Method, res.Checkpoint)
	}
	row.Elapsed = time.Since(start)
	return row, res.Losses, res.Status, nil
}

// saveExtra makes a checkpoint directory loadable as a Hugging Face model
// (config.json and tokenizer.json next to model.safetensors).
func saveExtra(m *llama.Model, tokJSON []byte, dir string) error {
	c := *m.Cfg
	c.DType = nnDType(m.DType)
	if err := c.Save(dir); err != nil {
		return err
	}
	return writeTokenizer(dir, tokJSON)
}

func nnDType(d torch.DType) string {
	if d == torch.BF16 {
		return "bfloat16"
	}
	return "float32"
}

func writeTokenizer(dir string, tokJSON []byte) error {
	p := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return os.WriteFile(p, tokJSON, 0o644)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
