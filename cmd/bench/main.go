// Command bench measures training steps of a Llama model on seeded random tokens with
// one optimizer and prints one JSON line:
//
//	go run ./cmd/bench --model llama-20m --method blockllm --batch-size 8 --seq-len 256
//
// Fields: method, model, params, trainable_params, batch_size, seq_len, dtype, device,
// threads, steps, ms_per_step (median over the timed steps), tokens_per_s (from the
// median; of all ranks together under data parallelism), optimizer_state_bytes,
// gradient_bytes (largest over the timed steps), peak_memory_bytes (allocator peak after
// the weights exist, weights included), weights_bytes and loss (last step); with more
// than one rank (--nproc-per-node, torchrun) also world_size, allreduce_bytes_per_step
// (one rank's all-reduced bytes per timed step) and collective_ms_per_step (time in
// collectives per timed step); memory and state figures are rank 0's.
//
// --compare REF prints, after the line, the ratios against the row of REF (JSON lines in
// this format) with the same method, model, batch size and sequence length.
//
// Subcommands: `bench NAME args...` runs a registered subcommand instead:
// `bench compare REF OURS` compares two files of lines row by row; others (e.g.
// `bench svm`) register themselves in the subcommands map.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/cmd/internal/cli"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/torch"
)

// subcommands maps `bench NAME` to its runner; other files of this package register
// theirs in init functions.
var subcommands = map[string]func(args []string) error{
	"compare": runCompare,
}

func main() {
	if len(os.Args) > 1 {
		if run, ok := subcommands[os.Args[1]]; ok {
			name := os.Args[1]
			cli.Main("bench "+name, func(_ context.Context, args []string, _, _ io.Writer) error { return run(args[1:]) })
		}
	}
	cli.Main("bench", func(_ context.Context, args []string, stdout, stderr io.Writer) error {
		return runTrain(args, stdout, stderr)
	})
}

// Line is bench's output record (one JSON line per run).
type Line struct {
	Method              string  `json:"method"`
	Model               string  `json:"model"`
	Params              int64   `json:"params"`
	TrainableParams     int64   `json:"trainable_params"`
	BatchSize           int     `json:"batch_size"`
	SeqLen              int     `json:"seq_len"`
	DType               string  `json:"dtype"`
	Device              string  `json:"device"`
	Threads             int     `json:"threads,omitempty"`
	Steps               int     `json:"steps"`
	MsPerStep           float64 `json:"ms_per_step"`
	TokensPerS          float64 `json:"tokens_per_s"`
	OptimizerStateBytes int64   `json:"optimizer_state_bytes"`
	GradientBytes       int64   `json:"gradient_bytes"`
	PeakMemoryBytes     int64   `json:"peak_memory_bytes"`
	WeightsBytes        int64   `json:"weights_bytes"`
	Loss                float64 `json:"loss"`
	Sparsity            float64 `json:"sparsity,omitempty"`
	Options             string  `json:"options,omitempty"` // non-default memory/speed flags
	Torch               string  `json:"torch,omitempty"`
	// Data parallelism (--nproc-per-node): the number of ranks, the bytes each rank
	// all-reduces per step (mean over the timed steps) and the time in collectives.
	WorldSize             int     `json:"world_size,omitempty"`
	AllReduceBytesPerStep float64 `json:"allreduce_bytes_per_step,omitempty"`
	CollectiveMsPerStep   float64 `json:"collective_ms_per_step,omitempty"`
}

type options struct {
	cli.Runtime
	cli.Memory
	cli.Selection
	cli.Parallel
	cli.PEFT
	method, model                string
	batch, seqLen, steps, warmup int
	sparsity, lr                 float64
	patience, probeRows          int
	seed                         uint64
	stateF32, masterF32          bool
	initOnDevice                 bool
	noFusedSDPA                  bool
	probeKeep                    bool
	compare                      string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.method, "method", "blockllm", "optimizer: "+strings.Join(blockllm.Methods, ", "))
	fs.StringVar(&o.model, "model", "llama-20m", "Llama preset ("+strings.Join(config.LlamaPresets(), ", ")+") or a config.json path or model directory")
	fs.IntVar(&o.batch, "batch-size", 8, "sequences per step")
	fs.IntVar(&o.seqLen, "seq-len", 256, "tokens per sequence")
	o.Runtime.Register(fs, "f32", "weight dtype: f32, bf16 or f16")
	o.Memory.Register(fs, cli.Memory{}, "0: off")
	fs.IntVar(&o.steps, "steps", 10, "timed steps")
	fs.IntVar(&o.warmup, "warmup", 2, "untimed steps first")
	fs.Float64Var(&o.sparsity, "sparsity", blockllm.DefaultPretrainSparsity, "BlockLLM sparsity")
	o.Selection.Register(fs)
	o.Parallel.Register(fs)
	o.PEFT.Register(fs, "128, alpha 32, dropout 0.1, all-linear, the other tensors trained in full: pretrain's defaults",
		"128, gap 200, scale 0.25: GaLore's Llama-60M C4 setting")
	fs.IntVar(&o.patience, "patience", 0, "BlockLLM patience (0: default)")
	fs.IntVar(&o.probeRows, "probe-rows", 0, "BlockLLM selection pass on this many sequences of the batch (0: all)")
	fs.BoolVar(&o.probeKeep, "probe-keep-activations", false, "BlockLLM selection pass keeps every activation (default: recomputes layers in its backward)")
	fs.Float64Var(&o.lr, "lr", 1e-3, "learning rate (constant)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the weights and the tokens")
	fs.BoolVar(&o.stateF32, "state-f32", false, "keep Adam moments in float32 for bf16/f16 weights")
	fs.BoolVar(&o.masterF32, "master-f32", false, "float32 master copies (and moments) of the updated tensors for bf16/f16 weights")
	fs.BoolVar(&o.initOnDevice, "init-on-device", true, "draw the random weights on --device (fast on a GPU; false: on the CPU, the same values on every device)")
	fs.BoolVar(&o.noFusedSDPA, "no-fused-sdpa", false, "use the math attention path even where fused SDPA is available")
	fs.StringVar(&o.compare, "compare", "", "reference JSON lines (bench's format): print ratios against the matching row to stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (subcommands: %s)", fs.Arg(0), strings.Join(subcommandNames(), ", "))
	}
	if o.batch < 1 || o.seqLen < 1 || o.steps < 1 || o.warmup < 0 || o.LossChunk < 0 || o.PadMLP < 0 {
		return nil, fmt.Errorf("--batch-size, --seq-len and --steps must be positive, --warmup, --loss-chunk and --pad-mlp not negative")
	}
	if err := o.Memory.Validate(0, 1); err != nil {
		return nil, err
	}
	if err := o.PEFT.Validate(); err != nil {
		return nil, err
	}
	o.PEFT.Defaults(blockllm.LoRAConfig{Rank: 128, Alpha: 32, Dropout: 0.1},
		blockllm.GaLoreConfig{Rank: 128, UpdateProjGap: blockllm.DefaultGaLoreGap, Scale: blockllm.DefaultGaLoreScale})
	if o.LoRATargets == "" {
		o.LoRATargets = blockllm.AllLinear
	}
	o.LoRATrainRest = true // a new random model, as pretrain's
	o.Selection.Parsed(fs)
	ms, err := blockllm.ParseMethods(o.method)
	switch {
	case err != nil:
		return nil, fmt.Errorf("--method: %w", err)
	case len(ms) != 1:
		return nil, fmt.Errorf("--method %s: bench times one method per run", o.method)
	}
	o.method = ms[0]
	return o, nil
}

func subcommandNames() []string {
	var out []string
	for k := range subcommands {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func loadConfig(name string) (*config.LlamaConfig, error) {
	if c, err := config.LlamaPreset(name); err == nil {
		return c, nil
	}
	if _, err := os.Stat(name); err != nil {
		return nil, fmt.Errorf("--model %q is neither a preset (%s) nor a file or directory", name, strings.Join(config.LlamaPresets(), ", "))
	}
	return config.LoadLlama(name)
}

func methodConfig(o *options) (blockllm.MethodConfig, error) {
	bc, err := o.Selection.Apply(blockllm.BlockLLMConfig{Sparsity: o.sparsity, Patience: o.patience,
		ProbeRows: o.probeRows, ProbeKeepActivations: o.probeKeep}, 1000, nil)
	mc := blockllm.MethodConfig{Method: o.method, Seed: o.seed, BlockLLM: bc,
		Adam: blockllm.AdamConfig{StateF32: o.stateF32, MasterF32: o.masterF32, Fused: o.FusedAdamW, EightBit: o.Adam8bit}}
	o.PEFT.Apply(&mc)
	return mc, err
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	dev, err := o.Runtime.Setup()
	if err != nil {
		return err
	}
	dt, err := torch.ParseDType(o.DType)
	if err != nil {
		return fmt.Errorf("--dtype: %w", err)
	}
	par, err := cli.JoinJob(cli.Settings("method", o.method, "model", o.model, "batch-size", o.batch, "seq-len", o.seqLen,
		"dtype", o.DType, "sparsity", o.sparsity, "shard-state", o.ShardState))
	if err != nil {
		return err
	}
	defer par.Close()
	dev = par.Device(dev, o.Device)
	stdout, stderr = par.Out(stdout), par.Out(stderr)
	cfg, err := loadConfig(o.model)
	if err != nil {
		return err
	}
	lo := o.Memory.LlamaOptions(dev, dt, !o.noFusedSDPA)
	lo.InitOnDevice = o.initOnDevice
	model, err := llama.New(cfg, lo, o.seed)
	if err != nil && lo.InitOnDevice && dev != torch.CPU {
		fmt.Fprintf(stderr, "bench: drawing the weights on %v failed (%v); drawing them on the CPU\n", dev, err)
		lo.InitOnDevice = false
		model, err = llama.New(cfg, lo, o.seed)
	}
	if err != nil {
		return err
	}
	defer model.Close()
	mc, err := methodConfig(o)
	if err != nil {
		return err
	}
	opt, err := blockllm.NewOptimizer(model, mc)
	if err != nil {
		return fmt.Errorf("--method: %w", err)
	}
	defer opt.Close()
	data, err := blockllm.NewRandomTokens(cfg.VocabSize, o.batch, o.seqLen, o.seed+uint64(par.Rank()), dev) // each rank its own tokens
	if err != nil {
		return err
	}
	total := o.warmup + o.steps
	tr, err := blockllm.NewTrainer(model, opt, data, blockllm.TrainConfig{Steps: total, LR: o.lr, StepInBackward: o.StepInBackward,
		Dist: par.Group, ShardState: o.ShardState})
	if err != nil {
		return err
	}
	line := Line{Method: opt.Name(), Model: o.model, BatchSize: o.batch, SeqLen: o.seqLen, DType: dt.String(),
		Device: dev.String(), Steps: o.steps}
	err = torch.Try(func() {
		torch.Synchronize(dev)
		torch.ResetPeakMemory(dev)
		line.Torch = torch.Version()
		if dev == torch.CPU {
			line.Threads = torch.NumThreads()
		}
	})
	if err != nil {
		return err
	}
	var flags []string
	if o.method == "blockllm" {
		line.Sparsity = o.sparsity
		for _, d := range cli.DescribeFlags(mc.BlockLLM) { // "--penalty exp-freq" -> "penalty=exp-freq"
			if d = strings.Replace(strings.TrimPrefix(d, "--"), " ", "=", 1); !strings.HasPrefix(d, "mask=") {
				flags = append(flags, d)
			}
		}
	}
	switch o.method {
	case "lora":
		flags = append(flags, fmt.Sprintf("lora-r=%d", o.LoRARank), fmt.Sprintf("lora-alpha=%g", o.LoRAAlpha),
			fmt.Sprintf("lora-dropout=%g", o.LoRADropout), "lora-targets="+o.LoRATargets)
	case "galore":
		flags = append(flags, fmt.Sprintf("galore-rank=%d", o.GaLoreRank), fmt.Sprintf("galore-gap=%d", o.GaLoreGap),
			fmt.Sprintf("galore-scale=%g", o.GaLoreScale))
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{o.stateF32, "state-f32"}, {o.masterF32, "master-f32"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	flags = append(flags, o.Memory.Names()...)
	for _, f := range []struct {
		on   bool
		name string
	}{{o.noFusedSDPA, "no-fused-sdpa"}, {mc.BlockLLM.MaskFraction > 0, fmt.Sprintf("mask=%g", mc.BlockLLM.MaskFraction)},
		{o.probeRows > 0, fmt.Sprintf("probe-rows=%d", o.probeRows)}, {o.probeKeep, "probe-keep-activations"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	line.Options = strings.Join(flags, ",")
	var ms []float64
	for i := 0; i < total; i++ {
		if i == o.warmup {
			par.Group.ResetStats()
		}
		start := time.Now()
		st, err := tr.Step()
		if err != nil {
			return err
		}
		if err := torch.Try(func() { torch.Synchronize(dev) }); err != nil {
			return err
		}
		el := time.Since(start)
		if i >= o.warmup {
			ms = append(ms, float64(el.Microseconds())/1000)
		}
		line.Params = st.Memory.Params
		line.WeightsBytes = st.Memory.Weights
		line.TrainableParams = max(line.TrainableParams, st.Memory.TrainableParams)
		line.OptimizerStateBytes = max(line.OptimizerStateBytes, st.Memory.OptimizerState)
		line.GradientBytes = max(line.GradientBytes, st.Memory.Gradients)
		line.Loss = st.Loss
		runtime.KeepAlive(st)
	}
	if err := torch.Try(func() { _, line.PeakMemoryBytes = torch.MemStats(dev) }); err != nil {
		return err
	}
	if par.Size() > 1 {
		line.WorldSize = par.Size()
		var bytes float64
		var coll time.Duration
		for op, st := range par.Group.Stats() {
			if op == "all_reduce" {
				bytes += float64(st.Bytes)
			}
			coll += st.Time
		}
		line.AllReduceBytesPerStep = bytes / float64(o.steps)
		line.CollectiveMsPerStep = float64(coll.Microseconds()) / 1000 / float64(o.steps)
		if o.ShardState {
			flags = append(flags, "shard-state")
			line.Options = strings.Join(flags, ",")
		}
	}
	line.MsPerStep = median(ms)
	line.TokensPerS = float64(o.batch*o.seqLen*par.Size()) / (line.MsPerStep / 1000) // --batch-size is per rank
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, string(b)); err != nil {
		return err
	}
	if o.compare != "" {
		ref, err := readLines(o.compare)
		if err != nil {
			return err
		}
		return writeComparison(stderr, ref, []Line{line})
	}
	return nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
