// Command finetune fine-tunes a RoBERTa sequence classifier on GLUE tasks with
// BlockLLM and the baselines (full AdamW, BAdam, LISA), evaluates it on the
// validation split, and prints the result table in the layout of the
// BlockLLM and GaLore papers (task columns, average, optimizer memory and peak
// memory).
//
// With no flags it runs a demo: a tiny randomly initialised RoBERTa (the
// embedded fortunes tokenizer, vocabulary 1000) on the embedded demo task in
// GLUE SST-2 layout (computing fortunes vs people/love/literature/wisdom
// fortunes), with BlockLLM and full AdamW, in a few minutes on two CPU cores.
//
// Real data:
//
//	finetune --model roberta-base/ --data glue_data/ --task all --method blockllm,adamw
//
// where roberta-base/ holds config.json, model.safetensors and tokenizer.json
// (a Hugging Face checkpoint) and glue_data/ the GLUE tasks (the original TSV
// distribution, CoLA/ SST-2/ ..., or Hugging Face parquet/jsonl exports).
// Run with -h for every flag.
package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/cmd/internal/cli"
	"github.com/blockllm/blockllm-go/data"
	"github.com/blockllm/blockllm-go/eval"
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

func main() { cli.Main("finetune", run) }

type options struct {
	cli.Runtime
	cli.Output
	cli.Methods
	cli.Selection
	cli.Memory
	cli.RunFlags
	cli.Parallel
	model, tokenizer, task, data       string
	lr, warmupRatio, weightDecay, clip float64
	epochs, batch, evalBatch, maxLen   int
	seed                               uint64
	out                                string
	maxTrain, maxEval                  int
	// instruction tuning (--task instruct)
	valData, chatTemplate, alpaca, resume string
	valFraction                           float64
	pack, maxLenSet                       bool
	checkpointEvery, keep, samples        int

	par *cli.Job // data parallelism (one rank without a launcher)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := cli.NewFlagSet("finetune", "Usage: finetune [flags]\n\n"+
		"Fine-tunes RoBERTa on GLUE with BlockLLM and baselines and prints the result table.\n"+
		"With no flags: a demo on embedded data with a tiny model (a few minutes on 2 CPU cores).\n", stderr)
	o.Runtime.Register(fs, "f32", "weight dtype: f32 or bf16")
	o.Output.Register(fs)
	o.Methods.Register(fs, "0: 0.95 for a checkpoint, 0.5 for the demo model", "0: 100 for a checkpoint, 20 for the demo model",
		"empty: all but embeddings for a checkpoint, '.*' (all) for the demo model")
	o.Selection.Register(fs)
	o.PEFT.Register(fs, "8, alpha 16 (the LoRA authors' RoBERTa GLUE scripts), dropout 0.1 for GLUE (peft's sequence-classification\n"+
		"example), 0.05 for --task instruct; targets peft's defaults, query,value for RoBERTa and q_proj,v_proj for Llama",
		"4, gap 500, scale 4: the GaLore authors' RoBERTa GLUE setting")
	o.Memory.Register(fs, cli.Memory{PadMLP: -1}, "-1: 64 on CUDA, off on the CPU; 0: off (Llama models only)")
	o.RunFlags.Register(fs, true)
	o.Parallel.Register(fs)
	fs.StringVar(&o.model, "model", "", "Hugging Face RoBERTa or Llama checkpoint `DIR` (Llama gets a score head on the last token, as LlamaForSequenceClassification) (config.json, model.safetensors, tokenizer.json); empty: the demo's tiny random RoBERTa")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer.json `FILE` or directory (default: the model directory; demo: embedded)")
	fs.StringVar(&o.task, "task", "sst2", "GLUE task: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, a comma list, or all (the papers' eight: all but wnli);\n"+
		"or instruct: instruction tuning of a causal LM (Llama) on --data files (Alpaca, prompt/completion, chat messages, ShareGPT)")
	fs.StringVar(&o.data, "data", "", "GLUE data `DIR` (GLUE TSV distribution or Hugging Face parquet/jsonl layout); empty: the embedded demo task (sst2 only)")
	fs.Float64Var(&o.lr, "lr", 0, "peak learning rate (0: 1e-3 for the demo model, 2e-5 for a checkpoint)")
	fs.Float64Var(&o.warmupRatio, "warmup-ratio", 0.06, "fraction of the steps with linear warmup (then linear decay to 0)")
	fs.Float64Var(&o.weightDecay, "weight-decay", 0, "AdamW decoupled weight decay")
	fs.Float64Var(&o.clip, "grad-clip", 1.0, "clip the global gradient norm (0: off)")
	fs.IntVar(&o.epochs, "epochs", 0, "training epochs (0: 3 for a checkpoint, 2 for the demo model)")
	fs.IntVar(&o.batch, "batch-size", 32, "training batch size")
	fs.IntVar(&o.evalBatch, "eval-batch-size", 64, "evaluation batch size")
	fs.IntVar(&o.maxLen, "max-len", 128, "truncate inputs to this many tokens (special tokens included; instruct: 512 unless given,\n"+
		"keeping at least a quarter of each response)")
	fs.Uint64Var(&o.seed, "seed", 42, "random seed (initialisation of new weights, data order, BAdam/LISA choices)")
	fs.StringVar(&o.out, "out", "", "save each fine-tuned model in Hugging Face layout under `DIR`/<task>/<method>")
	fs.IntVar(&o.maxTrain, "max-train", 0, "use only the first N training examples of each task (0: all)")
	fs.IntVar(&o.maxEval, "max-eval", 0, "evaluate on only the first N validation examples (0: all)")
	fs.StringVar(&o.valData, "val-data", "", "instruct: validation files (default: a hashed --val-fraction of --data)")
	fs.Float64Var(&o.valFraction, "val-fraction", 0.05, "instruct: fraction of the records held out for validation when --val-data is empty")
	fs.StringVar(&o.chatTemplate, "chat-template", "", "instruct: Jinja chat template `FILE` for chat data (default: the model's tokenizer_config.json / chat_template.jinja)")
	fs.StringVar(&o.alpaca, "alpaca-prompt", "stanford", "instruct: prompt of Alpaca records: stanford (train.py's, ending \"### Response:\") or newline (with a newline after it)")
	fs.BoolVar(&o.pack, "pack", false, "instruct: pack short examples into sequences of --max-len tokens (best-fit; attention crosses examples, as HF's packing)")
	fs.IntVar(&o.samples, "samples", -1, "instruct: after each method, print its greedy answers (up to 48 tokens, KV cache) to the first N validation prompts\n"+
		"(-1: 3 for the demo, 0 otherwise)")
	fs.IntVar(&o.checkpointEvery, "checkpoint-every", 0, "instruct: write a checkpoint every N steps under --out (0: only at the end and on interrupt)")
	fs.IntVar(&o.keep, "keep-checkpoints", 2, "instruct: keep only the newest N checkpoints (0: all)")
	fs.StringVar(&o.resume, "resume", "", "instruct: resume from a checkpoint `DIR`, or 'latest' (the newest under --out for each method)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := cli.NoArgs(fs); err != nil {
		return nil, err
	}
	o.Selection.Parsed(fs)
	o.maxLenSet = o.Selection.IsSet("max-len")
	if err := o.Methods.Validate(); err != nil {
		return nil, err
	}
	lora := blockllm.LoRAConfig{Rank: blockllm.DefaultLoRARank, Alpha: blockllm.DefaultLoRAAlpha, Dropout: 0.1}
	if o.task == "instruct" {
		lora.Dropout = 0.05
	}
	o.PEFT.Defaults(lora, blockllm.GaLoreGLUE)
	if err := o.Memory.Validate(o.clip, 1); err != nil {
		return nil, err
	}
	if err := o.RunFlags.Validate(); err != nil {
		return nil, err
	}
	if o.Overwrite && o.out == "" {
		return nil, fmt.Errorf("--overwrite needs --out DIR")
	}
	if err := cli.CheckOutputFile("--plot", o.Plot, report.PlotExtensions...); err != nil {
		return nil, err
	}
	switch {
	case o.task != "instruct" && o.LossChunk > 0:
		return nil, fmt.Errorf("--loss-chunk applies to causal-LM training (the LM head; --task instruct); sequence classifiers have none")
	case o.task != "instruct" && (o.resume != "" || o.checkpointEvery > 0 || o.valData != "" || o.pack || o.chatTemplate != "" || o.samples > 0):
		return nil, fmt.Errorf("--resume, --checkpoint-every, --val-data, --pack, --chat-template and --samples apply to --task instruct")
	case o.samples < -1:
		return nil, fmt.Errorf("--samples %d must not be negative", o.samples)
	case o.valFraction <= 0 || o.valFraction >= 1:
		return nil, fmt.Errorf("--val-fraction %g outside (0, 1)", o.valFraction)
	case o.checkpointEvery < 0 || o.keep < 0:
		return nil, fmt.Errorf("--checkpoint-every and --keep-checkpoints must not be negative")
	case o.resume == "latest" && o.out == "":
		return nil, fmt.Errorf("--resume latest needs --out DIR (where the checkpoints are)")
	case o.lr < 0 || math.IsNaN(o.lr):
		return nil, fmt.Errorf("--lr %g must be positive", o.lr)
	case o.epochs < 0:
		return nil, fmt.Errorf("--epochs %d must be positive", o.epochs)
	case o.batch < 1 || o.evalBatch < 1:
		return nil, fmt.Errorf("--batch-size and --eval-batch-size must be positive")
	case o.maxLen < 3:
		return nil, fmt.Errorf("--max-len %d is too short (at least 3 tokens)", o.maxLen)
	case o.warmupRatio < 0 || o.warmupRatio >= 1:
		return nil, fmt.Errorf("--warmup-ratio %g outside [0, 1)", o.warmupRatio)
	case o.maxTrain < 0 || o.maxEval < 0:
		return nil, fmt.Errorf("--max-train and --max-eval must not be negative")
	}
	return o, nil
}

// job is one task to fine-tune on: its train and validation sets, encoded.
type job struct {
	task  glue.Task
	train *glue.Dataset
	evals []*glue.Dataset // validation sets (MNLI: matched and mismatched)
	trEnc []glue.Encoded
	evEnc [][]glue.Encoded
}

// outcome is the result of one (task, method) run.
type outcome struct {
	scores  []metrics.TaskScore
	losses  []float64
	optMax  int64
	peak    int64
	elapsed time.Duration
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
	if o.par, err = cli.JoinJob(cli.Settings("model", o.model, "task", o.task, "data", o.data, "method", o.List,
		"lr", o.lr, "epochs", o.epochs, "batch-size", o.batch, "max-len", o.maxLen, "seed", o.seed, "sparsity", o.Sparsity,
		"shard-state", o.ShardState)); err != nil {
		return err
	}
	defer o.par.Close()
	dev = o.par.Device(dev, o.Device)
	stdout, stderr = o.par.Out(stdout), o.par.Out(stderr)
	if !o.par.Main() {
		o.Progress = false
	}
	if o.task == "instruct" {
		return runInstruct(ctx, o, dev, dt, stdout, stderr)
	}
	info := stdout // human-readable notes
	if o.JSON {
		info = stderr
	}
	demoModel, demoData := o.model == "", o.data == ""
	if o.lr == 0 {
		o.lr = 2e-5
		if demoModel {
			o.lr = 1e-3
		}
	}
	// The paper's settings fit a pretrained checkpoint. The demo model starts
	// from random weights, so its BlockLLM default trains a larger block that
	// may include the embeddings, and reselects sooner.
	auto := func(demoV, realV float64) float64 {
		if demoModel {
			return demoV
		}
		return realV
	}
	if o.epochs == 0 {
		o.epochs = int(auto(2, 3))
	}
	if o.Sparsity == 0 {
		o.Sparsity = auto(0.5, blockllm.DefaultSparsity)
	}
	if o.Patience == 0 {
		o.Patience = int(auto(20, blockllm.DefaultPatience))
	}
	if o.Eligible == "" && demoModel && !o.Selection.Reference() {
		o.Eligible = ".*"
	}
	methods, err := o.Configs(blockllm.AdamConfig{WeightDecay: o.weightDecay, StateF32: dt != torch.F32, Fused: o.FusedAdamW, EightBit: o.Adam8bit}, o.seed, &o.Selection, 500)
	if err != nil {
		return err
	}
	demoTok := ""
	if demoModel {
		demoTok = data.RobertaTinyTokenizer
	}
	tok, tokJSON, err := cli.LoadTokenizer(o.tokenizer, o.model, demoTok)
	if err != nil {
		return err
	}
	tasks, err := parseTasks(o.task, demoData)
	if err != nil {
		return err
	}
	if o.out != "" {
		var rd *blockllm.RunDir
		if o.par.Main() {
			rd, err = o.OpenOut(o.out, "finetune", cli.Settings("model", o.model, "tokenizer", o.tokenizer, "task", o.task,
				"data", o.data, "method", o.List, "lr", o.lr, "epochs", o.epochs, "batch-size", o.batch, "max-len", o.maxLen,
				"seed", o.seed, "sparsity", o.Sparsity, "patience", o.Patience, "eligible", o.Eligible, "dtype", o.DType), false)
		}
		if err := o.par.All(err); err != nil {
			return err
		}
		defer rd.Close()
	}
	if demoModel || demoData {
		fmt.Fprintln(info, "finetune: DEMO run —", demoNote(demoModel, demoData))
	}
	var jobs []*job
	for _, t := range tasks {
		j, err := loadJob(o, t, tok)
		if err != nil {
			return err
		}
		jobs = append(jobs, j)
		for _, ev := range j.evals {
			fmt.Fprintf(info, "finetune: %s: %d training examples, %d validation examples (%s), majority class %.1f%%\n",
				ev.ScoreTask(), len(j.trEnc), ev.Len(), ev.Layout, 100*ev.Majority())
		}
	}

	var jsonOut io.Writer
	if o.JSON {
		jsonOut = stdout
	}
	rows := make([]report.GLUERow, len(methods))
	var curves []report.Curve
	interrupted := false
methods:
	for mi, mc := range methods {
		rows[mi].Method = mc.Label()
		for _, j := range jobs {
			fmt.Fprintf(info, "finetune: %s on %s: %d epochs of %d steps, lr %g\n", rows[mi].Method, j.task.Name,
				o.epochs, (len(j.trEnc)+o.batch-1)/o.batch, o.lr)
			var epochInfo io.Writer
			if !o.JSON {
				epochInfo = info
			}
			res, err := runOne(ctx, o, mc, j, dev, dt, tok, tokJSON, jsonOut, epochInfo, stderr)
			if err != nil {
				return fmt.Errorf("%s on %s: %w", mc.Method, j.task.Name, err)
			}
			rows[mi].Scores = append(rows[mi].Scores, res.scores...)
			rows[mi].OptimizerBytes = max(rows[mi].OptimizerBytes, res.optMax)
			rows[mi].PeakBytes = max(rows[mi].PeakBytes, res.peak)
			rows[mi].Elapsed += res.elapsed
			for _, s := range res.scores {
				fmt.Fprintf(info, "finetune: %s: %s (optimizer state %s, peak %s, %s)\n", rows[mi].Method,
					s.String(), torch.FormatBytes(res.optMax), torch.FormatBytes(res.peak), res.elapsed.Round(time.Millisecond))
			}
			label := rows[mi].Method
			if len(jobs) > 1 {
				label += " " + j.task.Name
			}
			curves = append(curves, report.LossCurve(label, res.losses))
			if ctx.Err() != nil {
				interrupted = true
				rows = rows[:mi+1]
				break methods
			}
		}
	}
	if err := o.PlotLosses("finetune", curves, demoData, info); err != nil {
		return err
	}
	var lines []map[string]any
	for _, r := range rows {
		avg, _ := metrics.Average(r.Scores)
		lines = append(lines, map[string]any{"event": "result", "method": r.Method, "scores": r.Scores,
			"average": avg, "optimizer_state_bytes": r.OptimizerBytes, "peak_bytes": r.PeakBytes,
			"elapsed_s": r.Elapsed.Seconds(), "demo": demoModel || demoData})
	}
	title := "Validation results:"
	if demoModel || demoData {
		title = "Validation results (DEMO data and model, not GLUE numbers):"
	}
	if err := o.WriteResults(stdout, lines, title, func(w io.Writer) error { return report.WriteGLUETable(w, rows) }); err != nil {
		return err
	}
	if interrupted {
		return cli.Interrupted(ctx, "the table shows the runs so far (the last one stopped early)")
	}
	return nil
}

func demoNote(model, data bool) string {
	var parts []string
	if model {
		parts = append(parts, "model: a tiny randomly initialised RoBERTa (4 layers, hidden 128, embedded fortunes tokenizer; "+
			"as it starts from random weights, BlockLLM defaults to sparsity 0.5 with every tensor eligible and patience 20, "+
			"where a pretrained checkpoint gets the paper's 0.95 and 100)")
	}
	if data {
		parts = append(parts, "data: the embedded demo task in GLUE SST-2 layout (Debian fortunes: computing vs people/love/literature/wisdom), not SST-2")
	}
	return strings.Join(parts, "; ")
}

func parseTasks(s string, demoData bool) ([]glue.Task, error) {
	out, err := glue.ParseTasks(s)
	if err != nil {
		return nil, fmt.Errorf("--task: %w", err)
	}
	if demoData {
		for _, t := range out {
			if t.Name != data.DemoGLUETask {
				return nil, fmt.Errorf("--task %s needs --data DIR: the embedded demo data has only the %s-layout demo task", t.Name, data.DemoGLUETask)
			}
		}
	}
	return out, nil
}

func loadSplit(o *options, task, split string) (*glue.Dataset, error) {
	if o.data == "" {
		return glue.LoadFS(data.DemoGLUE(), task, split)
	}
	return glue.Load(o.data, task, split)
}

func loadJob(o *options, t glue.Task, tok *tokenizer.Tokenizer) (*job, error) {
	j := &job{task: t}
	var err error
	if j.train, err = loadSplit(o, t.Name, "train"); err != nil {
		return nil, err
	}
	if !j.train.Labeled {
		return nil, fmt.Errorf("%s train split (%s) has no labels", t.Name, strings.Join(j.train.Files, ", "))
	}
	if o.maxTrain > 0 && len(j.train.Examples) > o.maxTrain {
		j.train.Examples = j.train.Examples[:o.maxTrain]
	}
	splits := []string{"validation"}
	if t.Name == "mnli" {
		splits = []string{"validation_matched", "validation_mismatched"}
	}
	for _, sp := range splits {
		ev, err := loadSplit(o, t.Name, sp)
		if err != nil {
			return nil, err
		}
		if !ev.Labeled {
			return nil, fmt.Errorf("%s %s split (%s) has no labels", t.Name, sp, strings.Join(ev.Files, ", "))
		}
		if o.maxEval > 0 && len(ev.Examples) > o.maxEval {
			ev.Examples = ev.Examples[:o.maxEval]
		}
		j.evals = append(j.evals, ev)
	}
	if j.trEnc, err = glue.Encode(tok, j.train, o.maxLen); err != nil {
		return nil, err
	}
	for _, ev := range j.evals {
		enc, err := glue.Encode(tok, ev, o.maxLen)
		if err != nil {
			return nil, err
		}
		j.evEnc = append(j.evEnc, enc)
	}
	return j, nil
}

// classifier is what fine-tuning needs of a sequence-classification model.
type classifier interface {
	nn.Model
	NumLabels() int
	Save(dir string) error
}

// limits are the model facts the inputs are checked against.
type limits struct {
	vocab  int // vocab_size
	maxLen int // longest input in tokens (0: no limit)
	pad    int // pad id when the tokenizer has none
}

// newModel loads the checkpoint (RoBERTa, or Llama with a score head; a new head when
// the label count differs) or builds the demo model.
func newModel(o *options, t glue.Task, dev torch.Device, dt torch.DType, vocab int) (classifier, limits, error) {
	robertaOnly := func() error {
		if o.Recompute || o.RecomputeMLP || o.PadMLP > 0 {
			return fmt.Errorf("--recompute, --recompute-mlp and --pad-mlp apply to Llama models; this is a RoBERTa")
		}
		return nil
	}
	if o.model == "" {
		if err := robertaOnly(); err != nil {
			return nil, limits{}, err
		}
		c, err := config.ParseRoberta(data.RobertaDemoConfig)
		if err != nil {
			return nil, limits{}, err
		}
		if c.VocabSize < vocab {
			c.VocabSize = vocab
		}
		setLabels(c, t)
		m, err := roberta.New(c, roberta.Options{DType: dt, Device: dev}, o.seed)
		if err != nil {
			return nil, limits{}, err
		}
		return m, robertaLimits(m), nil
	}
	mt, err := config.ModelType(o.model)
	if err != nil {
		return nil, limits{}, err
	}
	switch mt {
	case "llama":
		labels := t.LabelNames
		if t.Regression() {
			labels = []string{"score"}
		}
		m, err := llama.LoadClassifier(o.model, o.Memory.LlamaOptions(dev, dt, false), labels, o.seed)
		if err != nil {
			return nil, limits{}, err
		}
		if len(m.NewlyInitialized) > 0 {
			m.Problem = nn.ProblemSingleLabel
			if t.Regression() {
				m.Problem = nn.ProblemRegression
			}
		}
		l := limits{vocab: m.Cfg.VocabSize, maxLen: m.Cfg.MaxPositionEmbeddings}
		if m.Cfg.PadTokenID != nil && *m.Cfg.PadTokenID >= 0 {
			l.pad = *m.Cfg.PadTokenID
		} else if len(m.Cfg.EOSTokenIDs) > 0 {
			l.pad = m.Cfg.EOSTokenIDs[0] // padded positions are masked; any id will do
		}
		return m, l, nil
	case "roberta", "":
		if err := robertaOnly(); err != nil {
			return nil, limits{}, err
		}
		m, err := roberta.Load(o.model, roberta.Options{DType: dt, Device: dev, NumLabels: t.NumLabels, Seed: o.seed})
		if err != nil {
			return nil, limits{}, err
		}
		if len(m.NewlyInitialized) > 0 {
			setLabels(m.Cfg, t)
		}
		return m, robertaLimits(m), nil
	}
	return nil, limits{}, fmt.Errorf("--model %s: model_type %q is not supported (roberta or llama)", o.model, mt)
}

func robertaLimits(m *roberta.Model) limits {
	return limits{vocab: m.Cfg.VocabSize, maxLen: m.Cfg.MaxPositionEmbeddings - m.Cfg.PadTokenID - 1, pad: m.Cfg.PadTokenID}
}

func setLabels(c *config.RobertaConfig, t glue.Task) {
	if t.Regression() {
		c.SetNumLabels(1)
		c.ProblemType = config.Regression
		return
	}
	c.SetLabels(t.LabelNames...)
	c.ProblemType = config.SingleLabelClassification
}

func runOne(ctx context.Context, o *options, mc blockllm.MethodConfig, j *job, dev torch.Device, dt torch.DType,
	tok *tokenizer.Tokenizer, tokJSON []byte, jsonOut, infoW, stderr io.Writer) (*outcome, error) {
	start := time.Now()
	if err := torch.Try(func() { torch.ManualSeed(o.seed) }); err != nil {
		return nil, err
	}
	m, lim, err := newModel(o, j.task, dev, dt, tok.VocabSize())
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if m.NumLabels() != j.task.NumLabels {
		return nil, fmt.Errorf("model %s has %d outputs, task %s needs %d", o.model, m.NumLabels(), j.task.Name, j.task.NumLabels)
	}
	if v := tok.VocabSize(); v > lim.vocab {
		return nil, fmt.Errorf("tokenizer has %d ids but the model's vocab_size is %d", v, lim.vocab)
	}
	if lim.maxLen > 0 && o.maxLen > lim.maxLen {
		return nil, fmt.Errorf("--max-len %d exceeds the model's %d positions", o.maxLen, lim.maxLen)
	}
	opt, err := blockllm.NewOptimizer(m, mc)
	if err != nil {
		return nil, err
	}
	defer opt.Close()
	pad := tok.PAD()
	if pad < 0 {
		pad = lim.pad
	}
	d, err := glue.NewBatches(j.trEnc, o.batch, pad, j.task.Regression(), o.seed, dev, o.par.Rank(), o.par.Size())
	if err != nil {
		return nil, err
	}
	steps := o.epochs * d.StepsPerEpoch()
	var last []metrics.TaskScore
	evalFn := func(step int) (map[string]float64, error) {
		out := map[string]float64{}
		last = last[:0]
		for i, ev := range j.evals {
			sc, err := eval.ScoreGLUEShard(m, ev, j.evEnc[i], o.evalBatch, pad, o.par.Rank(), o.par.Size(), o.par.Sum)
			if err != nil {
				return nil, err
			}
			last = append(last, sc)
			out[sc.Task] = sc.Score
			for k, v := range sc.Metrics {
				out[sc.Task+"/"+k] = v
			}
		}
		if infoW != nil {
			var parts []string
			for _, sc := range last {
				parts = append(parts, sc.String())
			}
			fmt.Fprintf(infoW, "\nfinetune: %s, epoch %d (step %d): %s\n", mc.Label(), step/d.StepsPerEpoch(), step, strings.Join(parts, "; "))
		}
		return out, nil
	}
	cfg := blockllm.TrainConfig{
		Steps:          steps,
		LR:             o.lr,
		Schedule:       blockllm.Schedule{Kind: blockllm.Linear, Warmup: int(o.warmupRatio * float64(steps))},
		MaxGradNorm:    o.clip,
		StepInBackward: o.StepInBackward,
		EvalEvery:      d.StepsPerEpoch(),
		Eval:           evalFn,
		Dist:           o.par.Group,
		ShardState:     o.ShardState,
	}
	o.RunFlags.Apply(&cfg)
	jsonLines := o.Attach(&cfg, jsonOut, map[string]any{"task": j.task.Name, "method": mc.Method}, stderr)
	if err := torch.Try(func() { torch.ResetPeakMemory(dev) }); err != nil {
		return nil, err
	}
	res, err := blockllm.Train(ctx, m, opt, d, cfg, "")
	if err != nil {
		return nil, err
	}
	if jsonLines != nil && jsonLines.Err() != nil {
		return nil, jsonLines.Err()
	}
	if res.Status == blockllm.Interrupted || len(last) == 0 {
		// Interrupted before the first evaluation: evaluate what there is.
		var e error
		torch.NoGrad(func() { _, e = evalFn(res.Step) })
		if e != nil {
			return nil, e
		}
	}
	if o.out != "" && o.par.Main() {
		dir := filepath.Join(o.out, j.task.Name, mc.Method)
		if err := cli.SaveModel(opt, m.Save, dir, o.model, stderr, "finetune", mc.Label()); err != nil {
			return nil, err
		}
		if err := cli.WriteTokenizer(dir, tokJSON); err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "finetune: saved %s\n", dir)
	}
	return &outcome{scores: append([]metrics.TaskScore(nil), last...), losses: res.Losses,
		optMax: res.OptimizerBytes, peak: res.PeakBytes, elapsed: time.Since(start)}, nil
}
