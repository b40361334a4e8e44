package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/cmd/internal/cli"
	"github.com/blockllm/blockllm-go/eval/report"
)

// ablation runs every --ablate variant of BlockLLM for every seed on the same data and
// prints, per variant, the final validation perplexity and loss (mean ± sd over seeds),
// the selections, the memory and the time; --plot draws the validation curves (mean
// over seeds).
func (j *job) ablation(ctx context.Context, adam blockllm.AdamConfig, stdout io.Writer, demo bool) error {
	o := j.o
	refCheck := o.ablateCheckEvery
	if refCheck == 0 {
		refCheck = 1000
	}
	variants, err := cli.ParseVariants(o.ablate, refCheck)
	if err != nil {
		return err
	}
	seeds, err := cli.ParseSeeds(o.seeds, o.seed)
	if err != nil {
		return err
	}
	if refCheck >= o.steps {
		fmt.Fprintf(j.info, "pretrain: note: the reference check interval %d is not below --steps %d: variants that use it never reselect (set --ablate-check-every)\n", refCheck, o.steps)
	}
	if isCheckpoint(o.model) && len(seeds) > 1 {
		fmt.Fprintf(j.info, "pretrain: note: from a checkpoint the seed drives only a variant's random choices (--first-block random); the data order is fixed, so other variants give the same run for every seed\n")
	}
	var runs []cli.AblationRun
	curves := map[string][][]float64{}
	var steps []float64
	for _, v := range variants {
		var eligible []string
		if o.Eligible != "" {
			eligible = cli.SplitList(o.Eligible)
		} else if !isCheckpoint(o.model) && !v.Sel.Reference() {
			eligible = []string{".*"} // a new model: its embeddings must train too
		}
		bc, err := v.Sel.Apply(blockllm.BlockLLMConfig{Sparsity: o.Sparsity, Patience: o.Patience}, refCheck, eligible)
		if err != nil {
			return fmt.Errorf("variant %q: %w", v.Name, err)
		}
		for _, seed := range seeds {
			mc := blockllm.MethodConfig{Method: "blockllm", Adam: adam, BlockLLM: bc, Seed: seed, Variant: v.Name}
			fmt.Fprintf(j.info, "pretrain: ablation: %s, seed %d\n", v.Name, seed)
			row, res, err := j.train(ctx, mc, seed)
			if err != nil {
				return fmt.Errorf("variant %q, seed %d: %w", v.Name, seed, err)
			}
			if res.Status == blockllm.Interrupted {
				return cli.Interrupted(ctx, "the ablation stopped before its last run")
			}
			r := cli.AblationRun{Variant: v.Name, Seed: seed, Metric: row.PPLAfter, Loss: math.Log(row.PPLAfter),
				Selections: res.Selections, OptBytes: row.OptimizerBytes, PeakBytes: row.PeakBytes, Elapsed: row.Elapsed}
			ys := []float64{row.PPLBefore}
			xs := []float64{0}
			for _, e := range res.Evals {
				xs, ys = append(xs, float64(e.Step)), append(ys, e.Metrics["val_ppl"])
			}
			steps = xs
			curves[v.Name] = append(curves[v.Name], ys)
			runs = append(runs, r)
			if o.JSON {
				if err := cli.WriteJSON(stdout, map[string]any{"event": "ablation_run", "variant": v.Name, "seed": seed,
					"val_ppl": cli.JSONFloat(r.Metric), "val_loss": cli.JSONFloat(r.Loss), "selections": r.Selections,
					"optimizer_state_bytes": r.OptBytes, "peak_bytes": r.PeakBytes, "elapsed_s": r.Elapsed.Seconds()}); err != nil {
					return err
				}
			}
		}
	}
	rows := cli.Summarize(runs)
	if o.Plot != "" {
		var cs []report.Curve
		for _, v := range variants {
			c := report.Curve{Label: v.Name, X: steps, Y: make([]float64, len(steps))}
			for _, ys := range curves[v.Name] {
				for i := range c.Y {
					if i < len(ys) {
						c.Y[i] += ys[i] / float64(len(curves[v.Name]))
					}
				}
			}
			cs = append(cs, c)
		}
		title := "BlockLLM ablation: validation perplexity (mean over seeds)"
		if demo {
			title += ", demo data"
		}
		if err := report.PlotCurves(o.Plot, cs, report.PlotOptions{Title: title, YLabel: "validation perplexity", LogY: true}); err != nil {
			return err
		}
		fmt.Fprintf(j.info, "pretrain: wrote %s\n", o.Plot)
	}
	if o.JSON {
		for _, r := range rows {
			if err := cli.WriteJSON(stdout, map[string]any{"event": "ablation", "variant": r.Variant, "seeds": r.Seeds,
				"val_ppl_mean": r.Metric, "val_ppl_sd": r.MetricSD, "val_loss_mean": r.Loss, "val_loss_sd": r.LossSD,
				"selections_mean": r.Selections, "optimizer_state_bytes": r.OptimizerBytes, "peak_bytes": r.PeakBytes,
				"elapsed_s_mean": r.Elapsed.Seconds(), "demo": demo}); err != nil {
				return err
			}
		}
		return nil
	}
	title := fmt.Sprintf("BlockLLM ablation, %d seeds: validation perplexity after %d steps", len(seeds), o.steps)
	if demo {
		title += " (DEMO data and model)"
	}
	fmt.Fprintf(stdout, "\n%s\n", title)
	if err := report.WriteAblationTable(stdout, "Val PPL", rows); err != nil {
		return err
	}
	fmt.Fprint(stdout, cli.Verdict(rows, "val PPL", true))
	return nil
}
