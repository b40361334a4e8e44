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
	"github.com/blockllm/blockllm-go/eval/instruct"
	"github.com/blockllm/blockllm-go/eval/report"
	"github.com/blockllm/blockllm-go/hf/chat"
	"github.com/blockllm/blockllm-go/hf/config"
	"github.com/blockllm/blockllm-go/hf/generate"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/hf/tokenizer"
	"github.com/blockllm/blockllm-go/torch"
)

// instructJob is what the runs of every method share in instruction tuning.
type instructJob struct {
	o          *options
	dev        torch.Device
	dt         torch.DType
	tok        *tokenizer.Tokenizer
	tokJSON    []byte
	train, val []instruct.Sequence
	pad        int
	settings   map[string]string
	info       io.Writer
	jsonOut    io.Writer
	stderr     io.Writer
	samples    int      // validation prompts answered after each method
	answers    []answer // their answers, printed after the table
}

// answer is one method's greedy answer to a validation prompt.
type answer struct {
	method, prompt, reference, text string
}

// runInstruct is finetune --task instruct: a causal LM (a Llama checkpoint, or the demo's
// tiny random Llama) tuned on instruction data with the loss on the responses only,
// validation loss and perplexity on held-out records before and after every epoch,
// checkpoints and resume under --out, the final model in Hugging Face layout.
func runInstruct(ctx context.Context, o *options, dev torch.Device, dt torch.DType, stdout, stderr io.Writer) error {
	j := &instructJob{o: o, dev: dev, dt: dt, info: stdout, stderr: stderr, samples: o.samples}
	if o.JSON {
		j.info, j.jsonOut = stderr, stdout
	}
	demoModel, demoData := o.model == "", o.data == ""
	if j.samples < 0 {
		j.samples = 0
		if demoModel || demoData {
			j.samples = 3
		}
	}
	auto := func(demoV, realV float64) float64 {
		if demoModel {
			return demoV
		}
		return realV
	}
	if o.lr == 0 {
		o.lr = auto(3e-3, 2e-5)
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
		o.Eligible = ".*" // a model from random weights: the embeddings must train too
	}
	if !o.maxLenSet {
		o.maxLen = 512
	}
	methods, err := o.Configs(blockllm.AdamConfig{WeightDecay: o.weightDecay, StateF32: dt != torch.F32, Fused: o.FusedAdamW, EightBit: o.Adam8bit}, o.seed, &o.Selection, 500)
	if err != nil {
		return err
	}
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
			parts = append(parts, "model: a tiny randomly initialised Llama (4 layers, hidden 128, the embedded fortunes tokenizer)")
		}
		if demoData {
			parts = append(parts, instruct.DemoNotice)
		}
		fmt.Fprintln(j.info, "finetune: DEMO run —", strings.Join(parts, "; "))
	}
	if err := j.prepareData(); err != nil {
		return err
	}
	j.settings = o.DeterminismSettings(cli.Settings(append([]any{"model", o.model, "tokenizer", o.tokenizer, "task", o.task, "data", o.data, "val-data", o.valData,
		"val-fraction", o.valFraction, "lr", o.lr, "epochs", o.epochs, "batch-size", o.batch, "max-len", o.maxLen, "pack", o.pack,
		"alpaca-prompt", o.alpaca, "chat-template", o.chatTemplate, "warmup-ratio", o.warmupRatio, "grad-clip", o.clip,
		"weight-decay", o.weightDecay, "seed", o.seed, "sparsity", o.Sparsity, "patience", o.Patience, "eligible", o.Eligible,
		"dtype", o.DType, "switch-every", o.SwitchEvery, "lisa-layers", o.LISALayers}, o.PEFT.Settings()...)...))
	if o.out != "" {
		var rd *blockllm.RunDir
		if o.par.Main() {
			rd, err = o.OpenOut(o.out, "finetune", j.settings, o.resume != "")
		}
		if err := o.par.All(err); err != nil {
			return err
		}
		defer rd.Close()
	}
	var rows []report.PretrainRow
	var curves []report.Curve
	for _, mc := range methods {
		row, res, err := j.trainOne(ctx, mc)
		if err != nil {
			return fmt.Errorf("%s: %w", mc.Method, err)
		}
		rows = append(rows, row)
		curves = append(curves, report.LossCurve(row.Method, res.Losses))
		if res.Status == blockllm.Interrupted {
			break
		}
	}
	if err := o.PlotLosses("finetune", curves, demoData, j.info); err != nil {
		return err
	}
	var lines []map[string]any
	for _, r := range rows {
		lines = append(lines, map[string]any{"event": "result", "method": r.Method, "steps": r.Steps, "tokens": r.Tokens,
			"val_ppl_before": cli.JSONFloat(r.PPLBefore), "val_ppl_after": cli.JSONFloat(r.PPLAfter),
			"val_loss_after": cli.JSONFloat(math.Log(r.PPLAfter)), "optimizer_state_bytes": r.OptimizerBytes,
			"peak_bytes": r.PeakBytes, "elapsed_s": r.Elapsed.Seconds(), "demo": demoModel || demoData})
	}
	for _, a := range j.answers {
		lines = append(lines, map[string]any{"event": "answer", "method": a.method, "prompt": a.prompt, "reference": a.reference, "text": a.text})
	}
	title := "Validation perplexity on the response tokens:"
	if demoModel || demoData {
		title = "Validation perplexity on the response tokens (DEMO data and model):"
	}
	if err := o.WriteResults(stdout, lines, title, func(w io.Writer) error { return report.WritePretrainTable(w, rows) }); err != nil {
		return err
	}
	if len(j.answers) > 0 && !o.JSON {
		j.printAnswers(stdout, demoModel || demoData)
	}
	if len(rows) < len(methods) || ctx.Err() != nil {
		hint := "the table shows the runs so far"
		if o.out != "" {
			hint = "resume with the same flags and --resume latest --out " + o.out
		}
		return cli.Interrupted(ctx, hint)
	}
	return nil
}

// prepareData reads and encodes the instruction data: the training and validation
// records (--val-data, or a hashed --val-fraction of --data), the chat template where
// chat records need it, masked labels, truncation to --max-len, optional packing.
func (j *instructJob) prepareData() error {
	o := j.o
	var recs, val []instruct.Record
	var err error
	if o.data == "" {
		if recs, err = instruct.DemoFortunes(instruct.DemoOptions{}); err != nil {
			return err
		}
	} else if recs, err = readRecords(o.data); err != nil {
		return err
	}
	if o.valData != "" {
		if val, err = readRecords(o.valData); err != nil {
			return err
		}
	}
	var tmpl *chat.Template
	for _, r := range append(append([]instruct.Record(nil), recs...), val...) {
		if r.Layout.IsChat() {
			if tmpl, err = j.chatTemplate(); err != nil {
				return err
			}
			break
		}
	}
	if o.valData == "" {
		recs, val = instruct.Split(recs, o.valFraction, 0)
	}
	if o.maxTrain > 0 && len(recs) > o.maxTrain {
		recs = recs[:o.maxTrain]
	}
	if o.maxEval > 0 && len(val) > o.maxEval {
		val = val[:o.maxEval]
	}
	if len(recs) == 0 || len(val) == 0 {
		return fmt.Errorf("instruction data: %d training and %d validation records (both must be at least 1: raise --val-fraction or pass --val-data)", len(recs), len(val))
	}
	enc := instruct.Encoder{Tokenizer: j.tok, Template: tmpl, MaxLen: o.maxLen}
	switch o.alpaca {
	case "stanford":
		enc.Alpaca = instruct.StanfordAlpaca
	case "newline":
		enc.Alpaca = instruct.AlpacaNewline
	default:
		return fmt.Errorf("--alpaca-prompt %q: want stanford or newline", o.alpaca)
	}
	trEx, st, err := enc.EncodeAll(recs)
	if err != nil {
		return err
	}
	valEx, vst, err := enc.EncodeAll(val)
	if err != nil {
		return err
	}
	fmt.Fprintf(j.info, "finetune: instruction data: %d training records (%d tokens, %d of them response), %d validation records (%d response tokens)\n",
		st.Examples, st.Tokens, st.ResponseTokens, vst.Examples, vst.ResponseTokens)
	if st.Truncated+vst.Truncated > 0 {
		fmt.Fprintf(j.info, "finetune: cut to --max-len %d: %d training and %d validation examples (%d and %d of them with the prompt cut from the left)\n",
			o.maxLen, st.Truncated, vst.Truncated, st.PromptCut, vst.PromptCut)
	}
	if o.pack {
		if j.train, err = instruct.Pack(trEx, o.maxLen); err != nil {
			return err
		}
		fmt.Fprintf(j.info, "finetune: packed %d examples into %d sequences of at most %d tokens\n", len(trEx), len(j.train), o.maxLen)
	} else {
		j.train = instruct.Singles(trEx)
	}
	j.val = instruct.Singles(valEx)
	j.pad = j.tok.PAD()
	if j.pad < 0 {
		j.pad = max(j.tok.EOS(), 0) // padded positions are masked and never learned
	}
	return nil
}

// readRecords reads comma-separated files and globs of instruction data.
func readRecords(list string) ([]instruct.Record, error) {
	var files []string
	for _, p := range cli.SplitList(list) {
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("--data: bad pattern %q: %w", p, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("--data %s: no such file or glob match", p)
		}
		files = append(files, m...)
	}
	return instruct.ReadFiles(files)
}

// chatTemplate loads --chat-template, or the model directory's template.
func (j *instructJob) chatTemplate() (*chat.Template, error) {
	dir := j.o.model
	if dir == "" && j.o.chatTemplate == "" {
		return nil, fmt.Errorf("chat records need a chat template: pass --chat-template FILE (the demo model has none)")
	}
	t, err := chat.Load(dir, chat.Options{File: j.o.chatTemplate})
	if err != nil {
		return nil, fmt.Errorf("chat template: %w (pass --chat-template FILE)", err)
	}
	return t, nil
}

// newModel loads the Llama checkpoint (or builds the demo model) for one run.
func (j *instructJob) newModel() (*llama.Model, error) {
	lo := j.o.Memory.LlamaOptions(j.dev, j.dt, true)
	if j.o.model == "" {
		c, err := config.ParseLlama(data.LlamaDemoConfig)
		if err != nil {
			return nil, err
		}
		return llama.New(c, lo, j.o.seed)
	}
	mt, err := config.ModelType(j.o.model)
	if err != nil {
		return nil, err
	}
	if mt != "llama" {
		return nil, fmt.Errorf("--task instruct needs a causal LM (llama); %s has model_type %q", j.o.model, mt)
	}
	return llama.Load(j.o.model, lo)
}

func (j *instructJob) trainOne(ctx context.Context, mc blockllm.MethodConfig) (report.PretrainRow, *blockllm.Result, error) {
	o := j.o
	start := time.Now()
	row := report.PretrainRow{Method: mc.Label(), PPLBefore: math.NaN(), PPLAfter: math.NaN()}
	m, opt, err := cli.LlamaRun(o.seed, j.newModel, j.tok, "--max-len", o.maxLen, mc)
	if err != nil {
		return row, nil, err
	}
	defer m.Close()
	defer opt.Close()
	d, err := instruct.NewBatches(j.train, o.batch, j.pad, o.seed, j.dev, o.par.Rank(), o.par.Size())
	if err != nil {
		return row, nil, err
	}
	steps := o.epochs * d.StepsPerEpoch()
	valPPL := func() (float64, error) { // each rank scores its share of the records
		var mine []instruct.Sequence
		for _, i := range o.par.Shard(len(j.val)) {
			mine = append(mine, j.val[i])
		}
		n, err := eval.SequencesNLL(m, mine, o.evalBatch, j.pad)
		if err := o.par.All(err); err != nil {
			return math.NaN(), err
		}
		n, err = o.par.ReduceNLL(n)
		return n.Perplexity(), err
	}
	cfg := blockllm.TrainConfig{
		Steps:           steps,
		LR:              o.lr,
		Schedule:        blockllm.Schedule{Kind: blockllm.Linear, Warmup: int(o.warmupRatio * float64(steps))},
		MaxGradNorm:     o.clip,
		StepInBackward:  o.StepInBackward,
		EvalEvery:       d.StepsPerEpoch(),
		CheckpointEvery: o.checkpointEvery,
		KeepCheckpoints: o.keep,
		Settings:        j.settings,
		Dist:            o.par.Group,
		ShardState:      o.ShardState,
		Eval: func(step int) (map[string]float64, error) {
			ppl, err := valPPL()
			if err != nil {
				return nil, err
			}
			if !o.JSON {
				fmt.Fprintf(j.info, "\nfinetune: %s, epoch %d (step %d): validation perplexity %.2f\n", row.Method, step/d.StepsPerEpoch(), step, ppl)
			}
			return map[string]float64{"val_ppl": ppl, "val_loss": math.Log(ppl)}, nil
		},
	}
	o.RunFlags.Apply(&cfg)
	jsonLines := o.Attach(&cfg, j.jsonOut, map[string]any{"task": "instruct", "method": mc.Method}, j.stderr)
	saveExtra := func(dir string) error {
		c := *m.Cfg
		c.DType = m.DType.String()
		if err := c.Save(dir); err != nil {
			return err
		}
		return cli.WriteTokenizer(dir, j.tokJSON)
	}
	tr, methodDir, err := cli.StartTrainer(m, opt, d, cfg, cli.RunIn{Out: o.out, Method: mc.Method, Resume: o.resume,
		SaveExtra: saveExtra, Info: j.info, Name: "finetune", Label: row.Method, Main: o.par.Main()})
	if err != nil {
		return row, nil, err
	}
	before := tr.StepCount()
	if row.PPLBefore, err = valPPL(); err != nil {
		return row, nil, err
	}
	fmt.Fprintf(j.info, "finetune: %s: %d epochs of %d steps (%d sequences each), lr %g; validation perplexity at step %d: %.2f\n",
		row.Method, o.epochs, d.StepsPerEpoch(), o.batch, o.lr, before, row.PPLBefore)
	if err := torch.Try(func() { torch.ResetPeakMemory(j.dev) }); err != nil {
		return row, nil, err
	}
	res, err := tr.Run(ctx)
	if err != nil {
		return row, nil, err
	}
	if jsonLines != nil && jsonLines.Err() != nil {
		return row, nil, jsonLines.Err()
	}
	row.Steps = res.Step
	row.Tokens = int64(res.Step-before) * int64(instruct.LearnedPositions(j.train)) / int64(d.StepsPerEpoch())
	if n := len(res.Evals); n > 0 && res.Evals[n-1].Step == res.Step {
		row.PPLAfter = res.Evals[n-1].Metrics["val_ppl"]
	} else if row.PPLAfter, err = valPPL(); err != nil {
		return row, nil, err
	}
	row.OptimizerBytes, row.PeakBytes = res.OptimizerBytes, res.PeakBytes
	if j.samples > 0 && res.Status == blockllm.Completed && o.par.Main() {
		if err := j.answer(ctx, m, mc.Method); err != nil {
			return row, nil, err
		}
	}
	if methodDir != "" && res.Status == blockllm.Completed && o.par.Main() {
		save := func(dir string) error {
			return cli.SaveModel(opt, m.Save, dir, o.model, j.info, "finetune", row.Method)
		}
		if err := cli.SaveFinal(save, j.tokJSON, methodDir, j.info, "finetune", row.Method); err != nil {
			return row, nil, err
		}
	}
	row.Elapsed = time.Since(start)
	return row, res, nil
}

// answer generates the model's greedy answers to the first j.samples validation prompts
// (the positions before each one's first learned label), up to 48 new tokens each, with
// a KV cache, stopping at the tokenizer's and the config's eos ids.
func (j *instructJob) answer(ctx context.Context, m *llama.Model, method string) error {
	eos := append([]int(nil), m.Cfg.EOSTokenIDs...)
	if id := j.tok.EOS(); id >= 0 {
		eos = append(eos, id)
	}
	for _, q := range j.val[:min(j.samples, len(j.val))] {
		p := 0
		for p < len(q.Labels) && q.Labels[p] == instruct.IgnoreIndex {
			p++
		}
		if p == 0 || p == len(q.IDs) {
			continue
		}
		sess, err := m.NewSession(llama.SessionOptions{})
		if err != nil {
			return err
		}
		res, err := generate.Generate(ctx, sess, q.IDs[:p], generate.Options{MaxNewTokens: 48, MaxLength: m.Cfg.MaxPositionEmbeddings, EOS: eos})
		sess.Close()
		if err != nil {
			return fmt.Errorf("generating an answer: %w", err)
		}
		a := answer{method: method}
		for _, d := range []struct {
			ids []int
			s   *string
		}{{q.IDs[:p], &a.prompt}, {q.IDs[p:], &a.reference}, {res.Tokens, &a.text}} {
			if *d.s, err = j.tok.Decode(d.ids, true); err != nil {
				return err
			}
		}
		j.answers = append(j.answers, a)
	}
	return nil
}

// printAnswers prints each validation prompt with the reference answer and every
// method's greedy answer.
func (j *instructJob) printAnswers(w io.Writer, demo bool) {
	title := "Greedy answers to validation prompts"
	if demo {
		title += " (DEMO model trained for minutes: expect fortune-like text, not sense)"
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	oneLine := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	width := len("reference:")
	for _, a := range j.answers {
		width = max(width, len(a.method)+1)
	}
	done := map[int]bool{}
	for i, a := range j.answers { // grouped by prompt, in the order they were asked
		if done[i] {
			continue
		}
		fmt.Fprintf(w, "\n  %-*s %s\n  %-*s %s\n", width, "prompt:", oneLine(a.prompt), width, "reference:", oneLine(a.reference))
		for k := i; k < len(j.answers); k++ {
			if b := j.answers[k]; !done[k] && b.prompt == a.prompt {
				fmt.Fprintf(w, "  %-*s %s\n", width, b.method+":", oneLine(b.text))
				done[k] = true
			}
		}
	}
}
