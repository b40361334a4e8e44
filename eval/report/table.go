// Package report writes the results of the commands: tables in the layout of the GaLore
// and BlockLLM papers (WriteGLUETable, WritePretrainTable, WritePPLTable, with
// tablewriter) and curves (PlotCurves, with gonum/plot). It is the one library package
// that imports table and plotting packages.
//
// Errors are prefixed "report:".
package report

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/blockllm/blockllm-go/eval"
	"github.com/blockllm/blockllm-go/eval/metrics"
	"github.com/blockllm/blockllm-go/torch"
)

// GLUERow is one line of a GLUE result table: a method (or model) and its
// scores on the tasks it ran, with its memory account.
type GLUERow struct {
	// Method names the row, e.g. "BlockLLM (95% sparsity)" or "Full AdamW".
	Method string `json:"method"`
	// Scores holds one score per task, for tasks named as metrics.CanonicalTask
	// returns them (MNLI as "mnli_matched" and "mnli_mismatched", or "mnli").
	Scores []metrics.TaskScore `json:"scores"`
	// OptimizerBytes is the optimizer state (the largest held during the runs).
	OptimizerBytes int64 `json:"optimizer_state_bytes"`
	// PeakBytes is the device allocator's peak (the largest over the runs).
	PeakBytes int64 `json:"peak_bytes"`
	// Elapsed is the training and evaluation time of the row (0: not shown).
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
}

// glueColumns is the task order of the GaLore and BlockLLM GLUE tables (WNLI,
// which they leave out, comes last).
var glueColumns = []struct{ task, head string }{
	{"cola", "CoLA"}, {"stsb", "STS-B"}, {"mrpc", "MRPC"}, {"rte", "RTE"}, {"sst2", "SST-2"},
	{"mnli", "MNLI"}, {"mnli_matched", "MNLI-m"}, {"mnli_mismatched", "MNLI-mm"},
	{"qnli", "QNLI"}, {"qqp", "QQP"}, {"wnli", "WNLI"},
}

// GLUEHeader returns the columns WriteGLUETable writes for rows: "Method",
// the tasks present in any row in the papers' order (CoLA, STS-B, MRPC, RTE,
// SST-2, MNLI, QNLI, QQP, then WNLI), "Avg" when more than one task is
// present, then "Optimizer memory", "Peak memory" and, when any row has one,
// "Time".
func GLUEHeader(rows []GLUERow) []string {
	present := map[string]bool{}
	timed := false
	for _, r := range rows {
		for _, s := range r.Scores {
			present[s.Task] = true
		}
		timed = timed || r.Elapsed > 0
	}
	h := []string{"Method"}
	n := 0
	for _, c := range glueColumns {
		if present[c.task] {
			h = append(h, c.head)
			n++
		}
	}
	if n > 1 {
		h = append(h, "Avg")
	}
	h = append(h, "Optimizer memory", "Peak memory")
	if timed {
		h = append(h, "Time")
	}
	return h
}

// WriteGLUETable writes rows as a table in the papers' layout (see
// GLUEHeader): task scores (×100, two decimals; "-" where a row lacks a task),
// the GLUE average (metrics.Average: MNLI-m and MNLI-mm count as one task)
// and the memory columns.
func WriteGLUETable(w io.Writer, rows []GLUERow) error {
	header := GLUEHeader(rows)
	withAvg := false
	for _, h := range header {
		withAvg = withAvg || h == "Avg"
	}
	var cells [][]string
	for _, r := range rows {
		by := map[string]float64{}
		for _, s := range r.Scores {
			by[s.Task] = s.Score
		}
		row := []string{r.Method}
		for _, h := range header[1:] {
			for _, c := range glueColumns {
				if c.head != h {
					continue
				}
				if v, ok := by[c.task]; ok {
					row = append(row, fmtScore(v))
				} else {
					row = append(row, "-")
				}
			}
		}
		if withAvg {
			avg, err := metrics.Average(r.Scores)
			if err != nil {
				return fmt.Errorf("report: %s: %w", r.Method, err)
			}
			row = append(row, fmtScore(avg))
		}
		row = append(row, torch.FormatBytes(r.OptimizerBytes), torch.FormatBytes(r.PeakBytes))
		if header[len(header)-1] == "Time" {
			row = append(row, formatDuration(r.Elapsed))
		}
		cells = append(cells, row)
	}
	return render(w, header, cells)
}

// PretrainRow is one line of a pretraining result table.
type PretrainRow struct {
	Method string `json:"method"`
	// Steps and Tokens are the optimizer steps and training tokens.
	Steps  int   `json:"steps"`
	Tokens int64 `json:"tokens"`
	// PPLBefore and PPLAfter are the validation perplexities before and after
	// training (NaN: not measured).
	PPLBefore float64 `json:"ppl_before"`
	PPLAfter  float64 `json:"ppl_after"`
	// OptimizerBytes and PeakBytes are the memory account.
	OptimizerBytes int64         `json:"optimizer_state_bytes"`
	PeakBytes      int64         `json:"peak_bytes"`
	Elapsed        time.Duration `json:"elapsed_ns"`
}

// PretrainHeader is the header of WritePretrainTable.
var PretrainHeader = []string{"Method", "Steps", "Tokens", "Val PPL before", "Val PPL after", "Optimizer memory", "Peak memory", "Time"}

// WritePretrainTable writes pretraining results: validation perplexity before
// and after, the memory account and the wall time of each method.
func WritePretrainTable(w io.Writer, rows []PretrainRow) error {
	var cells [][]string
	for _, r := range rows {
		cells = append(cells, []string{r.Method, fmt.Sprint(r.Steps), humanCount(r.Tokens),
			fmtPPL(r.PPLBefore), fmtPPL(r.PPLAfter), torch.FormatBytes(r.OptimizerBytes), torch.FormatBytes(r.PeakBytes),
			formatDuration(r.Elapsed)})
	}
	return render(w, PretrainHeader, cells)
}

// PPLRow is one line of a perplexity table: a text source and its result.
type PPLRow struct {
	Name string   `json:"name"`
	NLL  eval.NLL `json:"nll"`
}

// PPLHeader is the header of WritePPLTable.
var PPLHeader = []string{"Text", "Tokens", "Mean NLL", "Perplexity"}

// WritePPLTable writes one line per text (tokens predicted, mean negative
// log-likelihood in nats, perplexity) and, for several texts, a "total" line
// over all their tokens.
func WritePPLTable(w io.Writer, rows []PPLRow) error {
	var cells [][]string
	var total eval.NLL
	for _, r := range rows {
		total.Add(r.NLL)
		cells = append(cells, []string{r.Name, fmt.Sprint(r.NLL.Tokens), fmt.Sprintf("%.4f", r.NLL.Mean()), fmtPPL(r.NLL.Perplexity())})
	}
	if len(rows) > 1 {
		cells = append(cells, []string{"total", fmt.Sprint(total.Tokens), fmt.Sprintf("%.4f", total.Mean()), fmtPPL(total.Perplexity())})
	}
	return render(w, PPLHeader, cells)
}

func render(w io.Writer, header []string, rows [][]string) error {
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignRight
	}
	align[0] = tw.AlignLeft
	t := tablewriter.NewTable(w, tablewriter.WithConfig(tablewriter.NewConfigBuilder().
		WithHeaderAutoFormat(tw.Off).WithHeaderAlignment(tw.AlignCenter).Build()),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{Global: tw.AlignRight, PerColumn: align}))
	hs := make([]any, len(header))
	for i, h := range header {
		hs[i] = h
	}
	t.Header(hs...)
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return fmt.Errorf("report: table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("report: table: %w", err)
	}
	return nil
}

func fmtScore(v float64) string {
	if math.IsNaN(v) {
		return "nan"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtPPL(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 1e5:
		return fmt.Sprintf("%.3g", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// AblationRow is one variant of an ablation: the mean and sample standard deviation over
// its seeds of the final metric (and of the validation loss, NaN when not measured), the
// mean number of selections, the largest optimizer state and peak, the mean wall time.
type AblationRow struct {
	Variant          string
	Seeds            int
	Metric, MetricSD float64
	Loss, LossSD     float64
	Selections       float64
	OptimizerBytes   int64
	PeakBytes        int64
	Elapsed          time.Duration
}

// WriteAblationTable writes an ablation table: metric names the final metric column
// ("Val PPL", "Score").
func WriteAblationTable(w io.Writer, metric string, rows []AblationRow) error {
	header := []string{"Variant", "Seeds", metric + " (mean ± sd)", "Val loss (mean ± sd)", "Selections", "Optimizer memory", "Peak memory", "Time/run"}
	var cells [][]string
	for _, r := range rows {
		loss := "-"
		if !math.IsNaN(r.Loss) {
			loss = fmt.Sprintf("%.4f ± %.4f", r.Loss, r.LossSD)
		}
		cells = append(cells, []string{r.Variant, fmt.Sprint(r.Seeds), fmt.Sprintf("%.2f ± %.2f", r.Metric, r.MetricSD), loss,
			fmt.Sprintf("%.1f", r.Selections), torch.FormatBytes(r.OptimizerBytes), torch.FormatBytes(r.PeakBytes), formatDuration(r.Elapsed)})
	}
	return render(w, header, cells)
}
