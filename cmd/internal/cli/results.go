package cli

import (
	"fmt"
	"io"

	"github.com/blockllm/blockllm-go/blockllm"
	"github.com/blockllm/blockllm-go/eval/report"
)

// PlotLosses writes the training-loss curves to --plot, when set, and says so on info.
// The title notes demo data.
func (o *Output) PlotLosses(name string, curves []report.Curve, demoData bool, info io.Writer) error {
	if o.Plot == "" {
		return nil
	}
	title := "training loss"
	if demoData {
		title += " (demo data)"
	}
	if err := report.PlotCurves(o.Plot, curves, report.PlotOptions{Title: title, Smooth: 10}); err != nil {
		return err
	}
	fmt.Fprintf(info, "%s: wrote %s\n", name, o.Plot)
	return nil
}

// WriteResults writes a command's results to stdout: with --json, one JSON line per
// element of lines; otherwise a blank line, the title and the table.
func (o *Output) WriteResults(stdout io.Writer, lines []map[string]any, title string, table func(io.Writer) error) error {
	if o.JSON {
		for _, l := range lines {
			if err := WriteJSON(stdout, l); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(stdout, "\n%s\n", title)
	return table(stdout)
}

// Attach adds the trainer observers of the output flags to cfg: the JSON-lines writer
// (to jsonOut, when not nil, with the extra fields) and, with --progress, the progress
// bar on stderr. It returns the writer (nil without one), whose Err says whether every
// line was written.
func (o *Output) Attach(cfg *blockllm.TrainConfig, jsonOut io.Writer, extra map[string]any, stderr io.Writer) *JSONLines {
	var j *JSONLines
	if jsonOut != nil {
		j = &JSONLines{W: jsonOut, Extra: extra}
		cfg.Observers = append(cfg.Observers, j)
	}
	if o.Progress {
		cfg.Observers = append(cfg.Observers, &Progress{W: stderr})
	}
	return j
}
