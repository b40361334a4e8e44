package report

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blockllm/blockllm-go/eval"
	"github.com/blockllm/blockllm-go/eval/metrics"
)

func score(task string, v float64) metrics.TaskScore {
	return metrics.TaskScore{Task: task, Score: v}
}

// cells splits a rendered table line into its trimmed cells.
func cells(line string) []string {
	line = strings.Trim(strings.TrimSpace(line), "│|")
	var out []string
	for _, c := range strings.FieldsFunc(line, func(r rune) bool { return r == '│' || r == '|' }) {
		out = append(out, strings.TrimSpace(c))
	}
	return out
}

func TestGLUETableLayout(t *testing.T) {
	rows := []GLUERow{
		{Method: "BlockLLM", Scores: []metrics.TaskScore{score("sst2", 90), score("cola", 50),
			score("mnli_matched", 80), score("mnli_mismatched", 82)}, OptimizerBytes: 3 << 20, PeakBytes: 1536 << 20},
		{Method: "Full AdamW", Scores: []metrics.TaskScore{score("sst2", 92), score("stsb", 88)},
			OptimizerBytes: 500 << 20, PeakBytes: 2 << 30, Elapsed: 90 * time.Second},
	}
	assert.Equal(t, []string{"Method", "CoLA", "STS-B", "SST-2", "MNLI-m", "MNLI-mm", "Avg",
		"Optimizer memory", "Peak memory", "Time"}, GLUEHeader(rows))
	var buf bytes.Buffer
	require.NoError(t, WriteGLUETable(&buf, rows))
	var lines [][]string
	for _, l := range strings.Split(buf.String(), "\n") {
		if c := cells(l); len(c) == 10 {
			lines = append(lines, c)
		}
	}
	require.Len(t, lines, 3, buf.String())
	assert.Equal(t, GLUEHeader(rows), lines[0])
	// BlockLLM: average of cola 50, sst2 90 and MNLI (80+82)/2 = 81 -> 73.67.
	assert.Equal(t, []string{"BlockLLM", "50.00", "-", "90.00", "80.00", "82.00", "73.67", "3.0 MiB", "1.50 GiB", "-"}, lines[1])
	assert.Equal(t, []string{"Full AdamW", "-", "88.00", "92.00", "-", "-", "90.00", "500.0 MiB", "2.00 GiB", "1m30s"}, lines[2])

	// One task: no average column, no time column.
	one := []GLUERow{{Method: "x", Scores: []metrics.TaskScore{score("rte", 60)}}}
	assert.Equal(t, []string{"Method", "RTE", "Optimizer memory", "Peak memory"}, GLUEHeader(one))
}

func TestPretrainTable(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WritePretrainTable(&buf, []PretrainRow{{Method: "BlockLLM", Steps: 300, Tokens: 1_234_567,
		PPLBefore: 1031.5, PPLAfter: 45.678, OptimizerBytes: 2048, PeakBytes: 10 << 20, Elapsed: 12 * time.Second},
		{Method: "AdamW", PPLBefore: math.NaN(), PPLAfter: math.NaN()}}))
	var lines [][]string
	for _, l := range strings.Split(buf.String(), "\n") {
		if c := cells(l); len(c) == len(PretrainHeader) {
			lines = append(lines, c)
		}
	}
	require.Len(t, lines, 3, buf.String())
	assert.Equal(t, PretrainHeader, lines[0])
	assert.Equal(t, []string{"BlockLLM", "300", "1.23M", "1031.50", "45.68", "2.00 KiB", "10.0 MiB", "12.0s"}, lines[1])
	assert.Equal(t, "-", lines[2][3])
}

func TestPlotCurvesPNG(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "loss.png")
	a := LossCurve("BlockLLM", []float64{3, 2.5, math.NaN(), 2, 1.8})
	b := LossCurve("AdamW", []float64{3, 2.2, 1.9, 1.7, 1.6})
	require.NoError(t, PlotCurves(path, []Curve{a, b}, PlotOptions{Title: "demo", Smooth: 2}))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, 8*96, img.Bounds().Dx()) // 8 inches at gonum's 96 dpi
	assert.Equal(t, 5*96, img.Bounds().Dy())
	// The image is not blank: it has more than two colours.
	colours := map[uint32]bool{}
	for y := 0; y < img.Bounds().Dy(); y += 3 {
		for x := 0; x < img.Bounds().Dx(); x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r<<16^g<<8^bl] = true
		}
	}
	assert.Greater(t, len(colours), 2)

	assert.ErrorContains(t, PlotCurves(filepath.Join(dir, "x.txt"), []Curve{a}, PlotOptions{}), "unsupported image extension")
	assert.ErrorContains(t, PlotCurves(path, nil, PlotOptions{}), "no curves")
	assert.ErrorContains(t, PlotCurves(path, []Curve{{Label: "bad", X: []float64{1}}}, PlotOptions{}), "1 x and 0 y")
	assert.Equal(t, []float64{1, 1.5, 2.5}, movingAverage([]float64{1, 2, 3}, 2))
}

func TestPPLTable(t *testing.T) {
	var buf bytes.Buffer
	rows := []PPLRow{{Name: "a.txt", NLL: eval.NLL{Sum: 20, Tokens: 10}}, {Name: "b.json.gz", NLL: eval.NLL{Sum: 10, Tokens: 10}}}
	require.NoError(t, WritePPLTable(&buf, rows))
	var lines [][]string
	for _, l := range strings.Split(buf.String(), "\n") {
		if c := cells(l); len(c) == len(PPLHeader) {
			lines = append(lines, c)
		}
	}
	require.Len(t, lines, 4, buf.String())
	assert.Equal(t, []string{"a.txt", "10", "2.0000", "7.39"}, lines[1])
	assert.Equal(t, []string{"total", "20", "1.5000", "4.48"}, lines[3])
}

// TestLogTicksAlwaysLabelled: a log axis over less than a decade (perplexities of a
// short run) still gets at least two numbered ticks; wider ranges keep powers of ten.
func TestLogTicksAlwaysLabelled(t *testing.T) {
	labels := func(min, max float64) []string {
		var ls []string
		for _, tk := range (logTicks{}).Ticks(min, max) {
			if tk.Label != "" && tk.Value >= min && tk.Value <= max {
				ls = append(ls, tk.Label)
			}
		}
		return ls
	}
	assert.GreaterOrEqual(t, len(labels(80.2, 95.7)), 2, "%v", labels(80.2, 95.7))
	assert.GreaterOrEqual(t, len(labels(61, 610)), 2, "%v", labels(61, 610))
	assert.Equal(t, []string{"1", "10", "100", "1000"}, labels(1, 1000))
}
