package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/cmd/internal/cli"
	"github.com/blockllm/blockllm-go/eval"
	"github.com/blockllm/blockllm-go/eval/report"
	"github.com/blockllm/blockllm-go/hf/llama"
	"github.com/blockllm/blockllm-go/torch"
)

// train runs one method: a fresh model (or the checkpoint's), its optimizer, the
// training stream, validation perplexity before, during and after, checkpoints and the
// final save. It returns the table row, the per-step losses and how the run ended.
func (j *job) train(ctx context.Context, mc blockllm.MethodConfig, seed uint64) (report.PretrainRow, *blockllm.Result, error) {
	o := j.o
	start := time.Now()
	row := report.PretrainRow{Method: mc.Label(), PPLBefore: math.NaN(), PPLAfter: math.NaN()}
	load := func() (*llama.Model, error) { return newModel(o, j.tok, j.dev, j.dt, j.info, seed) }
	m, opt, err := cli.LlamaRun(seed, load, j.tok, "--seq-len", o.seqLen, mc)
	if err != nil {
		return row, nil, err
	}
	defer m.Close()
	defer opt.Close()
	d, closeData, err := j.trainData()
	if err != nil {
		return row, nil, err
	}
	defer closeData()

	valPPL := func() (float64, error) { // each rank scores its share of the blocks
		var mine [][]int
		for _, i := range j.par.Shard(len(j.valBlocks)) {
			mine = append(mine, j.valBlocks[i])
		}
		var n eval.NLL
		var err error
		if len(mine) > 0 {
			torch.NoGrad(func() { n, err = eval.BlocksNLL(m, mine, o.evalBatch) })
		}
		if err := j.par.All(err); err != nil {
			return math.NaN(), err
		}
		n, err = j.par.ReduceNLL(n)
		return n.Perplexity(), err
	}
	cfg := blockllm.TrainConfig{
		Steps:          o.steps,
		GradAccum:      o.gradAccum,
		LR:             o.lr,
		Schedule:       j.sched,
		MaxGradNorm:    o.clip,
		StepInBackward: o.StepInBackward,
		EvalEvery:      o.evalEvery,
		Eval: func(step int) (map[string]float64, error) {
			ppl, err := valPPL()
			if err != nil {
				return nil, err
			}
			if !o.JSON {
				fmt.Fprintf(j.info, "\npretrain: %s step %d: validation perplexity %.2f\n", row.Method, step, ppl)
			}
			return map[string]float64{"val_ppl": ppl, "val_loss": math.Log(ppl)}, nil
		},
		KeepCheckpoints: o.keep,
		CheckpointEvery: o.checkpointEvery,
		Settings:        j.settings,
		Dist:            j.par.Group,
		ShardState:      o.ShardState,
	}
	o.RunFlags.Apply(&cfg)
	jsonLines := o.Attach(&cfg, j.jsonOut, map[string]any{"method": mc.Method}, j.stderr)
	tr, methodDir, err := cli.StartTrainer(m, opt, d, cfg, cli.RunIn{Out: o.out, Method: mc.Method, Resume: o.resume,
		SaveExtra: func(dir string) error { return saveExtra(m, j.tokJSON, dir) }, Info: j.info, Name: "pretrain", Label: row.Method, Main: j.par.Main()})
	if err != nil {
		return row, nil, err
	}
	before := tr.StepCount()
	if row.PPLBefore, err = valPPL(); err != nil {
		return row, nil, err
	}
	fmt.Fprintf(j.info, "pretrain: %s: %d steps of %d sequences x %d tokens, lr %g; validation perplexity at step %d: %.2f\n",
		row.Method, o.steps, o.gradAccum*o.batch, o.seqLen, o.lr, before, row.PPLBefore)
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
	row.Tokens = int64(res.Step-before) * int64(o.gradAccum*o.batch*o.seqLen*j.par.Size())
	if n := len(res.Evals); n > 0 && res.Evals[n-1].Step == res.Step {
		row.PPLAfter = res.Evals[n-1].Metrics["val_ppl"]
	} else if row.PPLAfter, err = valPPL(); err != nil {
		return row, nil, err
	}
	row.OptimizerBytes = res.OptimizerBytes
	row.PeakBytes = res.PeakBytes
	if methodDir != "" && res.Status == blockllm.Completed && j.par.Main() {
		save := func(dir string) error {
			return cli.SaveModel(opt, m.Save, dir, o.model, j.info, "pretrain", row.Method)
		}
		if err := cli.SaveFinal(save, j.tokJSON, methodDir, j.info, "pretrain", row.Method); err != nil {
			return row, nil, err
		}
	}
	if res.Checkpoint != "" {
		fmt.Fprintf(j.info, "pretrain: %s: last checkpoint %s\n", row.Method, res.Checkpoint)
	}
	row.Elapsed = time.Since(start)
	return row, res, nil
}

// saveExtra makes a checkpoint directory loadable as a Hugging Face model
// (config.json and tokenizer.json next to model.safetensors).
func saveExtra(m *llama.Model, tokJSON []byte, dir string) error {
	c := *m.Cfg
	c.DType = m.DType.String()
	if err := c.Save(dir); err != nil {
		return err
	}
	return cli.WriteTokenizer(dir, tokJSON)
}
