package report

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Curve is one line of a plot: Y against X (equal lengths), named Label in the
// legend.
type Curve struct {
	Label string
	X, Y  []float64
}

// LossCurve returns the curve of per-step losses (X = 1, 2, ...).
func LossCurve(label string, losses []float64) Curve {
	x := make([]float64, len(losses))
	for i := range x {
		x[i] = float64(i + 1)
	}
	return Curve{Label: label, X: x, Y: append([]float64(nil), losses...)}
}

// PlotOptions configure PlotCurves. The zero value plots raw curves on 8×5
// inches with "step" and "loss" axes.
type PlotOptions struct {
	Title  string
	XLabel string // "step" when empty
	YLabel string // "loss" when empty
	// Smooth replaces each point by the mean of the last Smooth points (a
	// trailing moving average); 0 or 1 plots the raw values.
	Smooth int
	// LogY uses a logarithmic y axis (all values must be positive).
	LogY bool
	// Width and Height in inches (0: 8 and 5).
	Width, Height float64
}

// PlotExtensions are the image file extensions PlotCurves writes.
var PlotExtensions = []string{".png", ".svg", ".pdf", ".jpg", ".jpeg", ".eps", ".tif", ".tiff"}

// PlotCurves draws curves as lines and writes the image to path; the format
// follows the extension (.png, .svg, .pdf, .jpg, .eps, .tif). Non-finite
// points are left out.
func PlotCurves(path string, curves []Curve, o PlotOptions) error {
	if len(curves) == 0 {
		return fmt.Errorf("report: plot %s: no curves", path)
	}
	ok := false
	for _, e := range PlotExtensions {
		ok = ok || strings.EqualFold(filepath.Ext(path), e)
	}
	if !ok {
		return fmt.Errorf("report: plot %s: unsupported image extension %q (use .png, .svg or .pdf)", path, filepath.Ext(path))
	}
	p := plot.New()
	p.Title.Text = o.Title
	p.X.Label.Text = orDefault(o.XLabel, "step")
	p.Y.Label.Text = orDefault(o.YLabel, "loss")
	if o.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	p.Add(plotter.NewGrid())
	var args []any
	for _, c := range curves {
		if len(c.X) != len(c.Y) {
			return fmt.Errorf("report: plot %s: curve %q has %d x and %d y values", path, c.Label, len(c.X), len(c.Y))
		}
		y := c.Y
		if o.Smooth > 1 {
			y = movingAverage(c.Y, o.Smooth)
		}
		var xy plotter.XYs
		for i := range c.X {
			if math.IsNaN(y[i]) || math.IsInf(y[i], 0) || math.IsNaN(c.X[i]) || (o.LogY && y[i] <= 0) {
				continue
			}
			xy = append(xy, plotter.XY{X: c.X[i], Y: y[i]})
		}
		if len(xy) == 0 {
			return fmt.Errorf("report: plot %s: curve %q has no finite points", path, c.Label)
		}
		args = append(args, c.Label, xy)
	}
	if err := plotutil.AddLines(p, args...); err != nil {
		return fmt.Errorf("report: plot %s: %w", path, err)
	}
	p.Legend.Top = true
	w, h := o.Width, o.Height
	if w <= 0 {
		w = 8
	}
	if h <= 0 {
		h = 5
	}
	if err := p.Save(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch, path); err != nil {
		return fmt.Errorf("report: plot: %w", err)
	}
	return nil
}

// logTicks labels a logarithmic axis at powers of ten when at least two fall inside
// its range, and otherwise (a range within about a decade, such as perplexities from 80
// to 95) at plot.DefaultTicks' round values, so that the axis always has numbers.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.LogTicks{Prec: -1}.Ticks(min, max)
	labeled := 0
	for _, t := range ts {
		if t.Label != "" && t.Value >= min && t.Value <= max {
			labeled++
		}
	}
	if labeled >= 2 {
		return ts
	}
	return plot.DefaultTicks{}.Ticks(min, max)
}

// movingAverage returns the trailing mean over up to k points ending at each i.
func movingAverage(y []float64, k int) []float64 {
	out := make([]float64, len(y))
	sum, n := 0.0, 0
	for i, v := range y {
		sum += v
		n++
		if n > k {
			sum -= y[i-k]
			n--
		}
		out[i] = sum / float64(n)
	}
	return out
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
