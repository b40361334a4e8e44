package cli

import (
	"fmt"
	"io"

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
