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
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/cmd/internal/cli"
	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval/report"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/torch"
)

func main() { cli.Main("pretrain", run) }

type options struct {
	cli.Runtime
	cli.Output
	cli.Methods
	cli.Selection
	cli.Memory
	cli.RunFlags
	cli.Parallel
	model, tokenizer, data, valData   string
	valFraction                       float64
	steps, seqLen, batch, gradAccum   int
	lr, minLRRatio, clip, weightDecay float64
	warmup                            int
	schedule                          string
	evalEvery, evalBlocks, evalBatch  int
	checkpointEvery, keep             int
	out, resume                       string
	seed                              uint64
	fusedSDPA                         bool
	ablate, seeds                     string
	ablateCheckEvery                  int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := cli.NewFlagSet("pretrain", "Usage: pretrain [flags]\n\n"+
		"Pretrains a Llama model on C4-format text with BlockLLM and baselines; prints validation perplexity.\n"+
		"With no flags: a demo on the embedded fortunes text with a tiny model (a few minutes on 2 CPU cores).\n", stderr)
	o.Runtime.Register(fs, "f32", "weight dtype: f32 or bf16")
	o.Output.Register(fs)
	o.Methods.Register(fs, "0: 0.9, 0.5 for the demo", "0: 100, 20 for the demo",
		"empty: '.*' (all tensors) for a new model from a preset or config.json, whose embeddings must train;\n"+
			"all but embeddings and LM head for a checkpoint")
	o.Selection.Register(fs)
	o.PEFT.Register(fs, "128, alpha 32, dropout 0.1, all-linear: the LoRA pretraining baseline of the GaLore paper (ReLoRA's code),\n"+
		"with every other tensor trained in full for a new model; rank 32 for the demo's 128-wide model",
		"128, gap 200, scale 0.25: GaLore's Llama-60M C4 setting; rank 32 for the demo's 128-wide model")
	o.Memory.Register(fs, cli.Memory{PadMLP: -1, FusedAdamW: true}, "-1: 64 on CUDA, off on the CPU; 0: off")
	o.RunFlags.Register(fs, true)
	o.Parallel.Register(fs)
	fs.StringVar(&o.model, "model", "", "`MODEL`: a preset ("+strings.Join(config.LlamaPresets(), ", ")+
		"), a config.json, or a Hugging Face Llama checkpoint directory (continues training); empty: the demo's tiny Llama")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer.json `FILE` or directory (default: the model directory; demo: embedded); a preset's vocab_size becomes the tokenizer's")
	fs.StringVar(&o.data, "data", "", "training text: comma-separated files, directories or globs of C4 JSON lines (.json, .jsonl, .gz, .zst) or text; empty: the embedded fortunes")
	fs.StringVar(&o.valData, "val-data", "", "validation text, same forms (default: the embedded fortunes validation shard for the demo, else a --val-fraction split of --data)")
	fs.Float64Var(&o.valFraction, "val-fraction", 0.005, "fraction of --data documents held out for validation when --val-data is empty")
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
	fs.BoolVar(&o.fusedSDPA, "fused-sdpa", true, "use libtorch's fused attention where available")
	fs.Uint64Var(&o.seed, "seed", 42, "random seed (initialisation, BAdam/LISA choices)")
	fs.StringVar(&o.ablate, "ablate", "", "ablation of BlockLLM's selection: variants separated by ';', each a preset and switches\n"+
		"(\"default; reference; default --penalty exp-freq\"), or 'all' (both presets and each reference switch\n"+
		"alone); each runs for every --seeds seed; prints mean ± sd per variant (--plot: validation curves)")
	fs.StringVar(&o.seeds, "seeds", "3", "with --ablate: a number of seeds (from --seed on) or a comma list of seeds")
	fs.IntVar(&o.ablateCheckEvery, "ablate-check-every", 0, "with --ablate all: the reference check interval (0: 1000, the authors')")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := cli.NoArgs(fs); err != nil {
		return nil, err
	}
	o.Selection.Parsed(fs)
	if err := o.Memory.Validate(o.clip, o.gradAccum); err != nil {
		return nil, err
	}
	if err := o.RunFlags.Validate(); err != nil {
		return nil, err
	}
	if o.warmup < -1 {
		return nil, fmt.Errorf("--warmup %d must not be negative (-1: 10%% of --steps)", o.warmup)
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
	if o.Sparsity == 0 {
		o.Sparsity = blockllm.DefaultPretrainSparsity
		if demo {
			o.Sparsity = 0.5
		}
	}
	if o.Patience == 0 {
		o.Patience = blockllm.DefaultPatience
		if demo {
			o.Patience = 20
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
	if err := o.Methods.Validate(); err != nil {
		return nil, err
	}
	rank := 128 // GaLore's Llama-60M rank (hidden 512), also the LoRA baseline's there
	if o.model == "" {
		rank = 32 // the same fraction of the demo model's hidden size, 128
	}
	o.PEFT.Defaults(blockllm.LoRAConfig{Rank: rank, Alpha: 32, Dropout: 0.1},
		blockllm.GaLoreConfig{Rank: rank, UpdateProjGap: blockllm.DefaultGaLoreGap, Scale: blockllm.DefaultGaLoreScale})
	if o.LoRATargets == "" {
		o.LoRATargets = blockllm.AllLinear
	}
	switch {
	case o.steps < 1 || o.seqLen < 2 || o.batch < 1 || o.gradAccum < 1 || o.evalBlocks < 1 || o.evalBatch < 1:
		return nil, fmt.Errorf("--steps, --batch-size, --grad-accum, --eval-blocks and --eval-batch-size must be positive and --seq-len at least 2")
	case !(o.lr > 0) || math.IsInf(o.lr, 0):
		return nil, fmt.Errorf("--lr %g must be positive", o.lr)
	case o.warmup > o.steps:
		return nil, fmt.Errorf("--warmup %d exceeds --steps %d", o.warmup, o.steps)
	case o.valFraction <= 0 || o.valFraction >= 1:
		return nil, fmt.Errorf("--val-fraction %g outside (0, 1)", o.valFraction)
	case o.checkpointEvery < 0 || o.keep < 0:
		return nil, fmt.Errorf("--checkpoint-every and --keep-checkpoints must not be negative")
	case o.resume != "" && o.out == "" && o.resume == "latest":
		return nil, fmt.Errorf("--resume latest needs --out DIR (where the checkpoints are)")
	case o.Overwrite && o.out == "":
		return nil, fmt.Errorf("--overwrite needs --out DIR")
	case o.ablate != "" && (o.out != "" || o.resume != ""):
		return nil, fmt.Errorf("--ablate runs are not checkpointed: drop --out and --resume")
	case o.ablateCheckEvery < 0:
		return nil, fmt.Errorf("--ablate-check-every %d must not be negative", o.ablateCheckEvery)
	}
	if err := cli.CheckOutputFile("--plot", o.Plot, report.PlotExtensions...); err != nil {
		return nil, err
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	dev, err := o.Runtime.Setup()
	if err != nil {
		return err
	}
	dt, err := o.TrainDType()
	if err != nil {
		return err
	}
	sched, err := blockllm.ParseScheduleKind(o.schedule)
	if err != nil {
		return fmt.Errorf("--schedule: %w", err)
	}
	if err := checkModel(o.model); err != nil {
		return err
	}
	eligible := o.Eligible
	if eligible == "" && !isCheckpoint(o.model) && !o.Selection.Reference() {
		o.Eligible = ".*" // a new model: its embeddings must train too
	}
	o.LoRATrainRest = !isCheckpoint(o.model) // a new model: LoRA trains the non-adapted tensors in full
	methods, err := o.Configs(blockllm.AdamConfig{WeightDecay: o.weightDecay, StateF32: dt != torch.F32, Fused: o.FusedAdamW, EightBit: o.Adam8bit}, o.seed, &o.Selection, 1000)
	o.Eligible = eligible
	if err != nil {
		return err
	}
	if o.resume != "" && o.resume != "latest" && len(methods) > 1 {
		return fmt.Errorf("--resume %s names one checkpoint; pass a single --method (or --resume latest)", o.resume)
	}
	par, err := cli.JoinJob(o.settings())
	if err != nil {
		return err
	}
	defer par.Close()
	dev = par.Device(dev, o.Device)
	stdout = par.Out(stdout) // rank 0 prints; the others train
	if !par.Main() {
		o.Progress = false
	}
	j := &job{o: o, dev: dev, dt: dt, stderr: stderr, info: stdout, settings: o.settings(), par: par,
		sched: blockllm.Schedule{Kind: sched, Warmup: o.warmup, MinRatio: o.minLRRatio}}
	if o.JSON {
		j.info, j.jsonOut = par.Out(stderr), stdout
	}
	demoModel, demoData := o.model == "", o.data == ""
	demoTok := ""
	if demoModel {
		demoTok = data.LlamaTinyTokenizer
	}
	if j.tok, j.tokJSON, err = cli.LoadTokenizer(o.tokenizer, o.model, demoTok); err != nil {
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
		fmt.Fprintln(j.info, "pretrain: DEMO run —", strings.Join(parts, "; "))
	}
	if o.out != "" {
		var rd *blockllm.RunDir
		if par.Main() { // rank 0 owns the output directory
			rd, err = o.OpenOut(o.out, "pretrain", j.settings, o.resume != "")
		}
		if err := par.All(err); err != nil {
			return err
		}
		defer rd.Close()
	}
	if err := j.prepareData(); err != nil {
		return err
	}
	fmt.Fprintf(j.info, "pretrain: validation: %d blocks of %d tokens\n", len(j.valBlocks), o.seqLen)
	if o.ablate != "" {
		if par.Size() > 1 {
			return fmt.Errorf("--ablate runs in one process (drop --nproc-per-node)")
		}
		return j.ablation(ctx, methods[0].Adam, stdout, demoModel || demoData)
	}

	var rows []report.PretrainRow
	var curves []report.Curve
	interrupted := false
	for _, mc := range methods {
		row, res, err := j.train(ctx, mc, o.seed)
		if err != nil {
			return fmt.Errorf("%s: %w", mc.Method, err)
		}
		rows = append(rows, row)
		curves = append(curves, report.LossCurve(row.Method, res.Losses))
		if res.Status == blockllm.Interrupted {
			interrupted = true
			break
		}
	}
	if err := o.PlotLosses("pretrain", curves, demoData, j.info); err != nil {
		return err
	}
	var lines []map[string]any
	for _, r := range rows {
		lines = append(lines, map[string]any{"event": "result", "method": r.Method, "steps": r.Steps,
			"tokens": r.Tokens, "val_ppl_before": cli.JSONFloat(r.PPLBefore), "val_ppl_after": cli.JSONFloat(r.PPLAfter),
			"optimizer_state_bytes": r.OptimizerBytes, "peak_bytes": r.PeakBytes, "elapsed_s": r.Elapsed.Seconds(),
			"demo": demoModel || demoData})
	}
	title := "Validation perplexity:"
	if demoModel || demoData {
		title = "Validation perplexity (DEMO data and model, not C4 numbers):"
	}
	if err := o.WriteResults(stdout, lines, title, func(w io.Writer) error { return report.WritePretrainTable(w, rows) }); err != nil {
		return err
	}
	if interrupted {
		hint := "the table shows the runs so far"
		if o.out != "" {
			hint = "resume with the same flags and --resume latest --out " + o.out
		}
		return cli.Interrupted(ctx, hint)
	}
	return nil
}

// settings are the values that define a run (after the defaults): a checkpoint records
// them and a resume must match them (--resume-allow names exceptions).
func (o *options) settings() map[string]string {
	kv := []any{"model", o.model, "tokenizer", o.tokenizer, "data", o.data, "val-data", o.valData,
		"val-fraction", o.valFraction, "steps", o.steps, "seq-len", o.seqLen, "batch-size", o.batch,
		"grad-accum", o.gradAccum, "lr", o.lr, "warmup", o.warmup, "schedule", o.schedule, "min-lr-ratio", o.minLRRatio,
		"grad-clip", o.clip, "weight-decay", o.weightDecay, "dtype", o.DType, "seed", o.seed,
		"sparsity", o.Sparsity, "patience", o.Patience, "eligible", o.Eligible,
		"switch-every", o.SwitchEvery, "lisa-layers", o.LISALayers}
	return o.DeterminismSettings(cli.Settings(append(kv, o.PEFT.Settings()...)...))
}
