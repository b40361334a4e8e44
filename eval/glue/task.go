// Package glue reads the nine GLUE benchmark tasks (CoLA, SST-2, MRPC, STS-B,
// QQP, MNLI, QNLI, RTE, WNLI) from the original GLUE distribution (TSV files
// in CoLA/, SST-2/, ... directories) or from Hugging Face "glue" dataset
// layouts (parquet shards or JSON lines), maps labels to Hugging Face's
// integer ids, and scores predictions with package metrics. It also turns the
// examples into model inputs: Encode tokenizes them (pairs, truncation), Collate
// pads them into batches, and Batches is the shuffled, resumable training source
// (a blockllm.Data) over the encoded examples.
//
// Reading and encoding are pure Go; Collate and Batches make torch tensors.
// Errors are prefixed "glue:" and name the file and line (TSV, JSON lines) or
// row (parquet) at fault.
package glue

import (
	"fmt"
	"strings"

	"github.com/blockllm/blockllm-go/eval/metrics"
)

// Task describes one GLUE task.
type Task struct {
	// Name is the Hugging Face config name: cola, sst2, mrpc, stsb, qqp,
	// mnli, qnli, rte or wnli.
	Name string
	// Dir is the task's directory name in the original GLUE distribution
	// (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI).
	Dir string
	// NumLabels is the number of classes; 1 for the regression task stsb.
	NumLabels int
	// LabelNames holds Hugging Face's class names in id order (nil for stsb).
	LabelNames []string
	// TextColumns names the one or two text inputs as Hugging Face's columns
	// (for example [premise hypothesis] for mnli). Example.TextA is the first
	// and Example.TextB the second (empty for single-sentence tasks).
	TextColumns []string
	// Metrics lists the metrics whose mean is the GLUE task score (see
	// metrics.TaskMetrics); the first is the one usually reported alone.
	Metrics []string
}

// Regression reports whether the task is a regression task (stsb).
func (t Task) Regression() bool { return t.NumLabels == 1 }

// Pair reports whether the task takes a sentence pair.
func (t Task) Pair() bool { return len(t.TextColumns) == 2 }

// spec adds the column names of each layout to a Task.
type spec struct {
	Task
	// tsvA, tsvB, tsvLabel: header names in the GLUE TSV files. CoLA's
	// train/dev files have no header; tsvA etc. are then unused.
	tsvA, tsvB, tsvLabel string
	// hfA, hfB, hfLabel: accepted column names in parquet/JSON lines, in
	// order of preference.
	hfA, hfB []string
	// labelAliases maps extra label strings (GLUE TSV spellings) to ids.
	labelAliases map[string]int
}

var specs = []spec{
	{
		Task:     Task{Name: "cola", Dir: "CoLA", NumLabels: 2, LabelNames: []string{"unacceptable", "acceptable"}, TextColumns: []string{"sentence"}},
		tsvA:     "sentence",
		tsvLabel: "label",
		hfA:      []string{"sentence", "text"},
	},
	{
		Task:     Task{Name: "sst2", Dir: "SST-2", NumLabels: 2, LabelNames: []string{"negative", "positive"}, TextColumns: []string{"sentence"}},
		tsvA:     "sentence",
		tsvLabel: "label",
		hfA:      []string{"sentence", "text"},
	},
	{
		Task:     Task{Name: "mrpc", Dir: "MRPC", NumLabels: 2, LabelNames: []string{"not_equivalent", "equivalent"}, TextColumns: []string{"sentence1", "sentence2"}},
		tsvA:     "#1 String",
		tsvB:     "#2 String",
		tsvLabel: "Quality",
		hfA:      []string{"sentence1", "text1"},
		hfB:      []string{"sentence2", "text2"},
	},
	{
		Task:     Task{Name: "stsb", Dir: "STS-B", NumLabels: 1, TextColumns: []string{"sentence1", "sentence2"}},
		tsvA:     "sentence1",
		tsvB:     "sentence2",
		tsvLabel: "score",
		hfA:      []string{"sentence1", "text1"},
		hfB:      []string{"sentence2", "text2"},
	},
	{
		Task:     Task{Name: "qqp", Dir: "QQP", NumLabels: 2, LabelNames: []string{"not_duplicate", "duplicate"}, TextColumns: []string{"question1", "question2"}},
		tsvA:     "question1",
		tsvB:     "question2",
		tsvLabel: "is_duplicate",
		hfA:      []string{"question1", "text1"},
		hfB:      []string{"question2", "text2"},
	},
	{
		Task:     Task{Name: "mnli", Dir: "MNLI", NumLabels: 3, LabelNames: []string{"entailment", "neutral", "contradiction"}, TextColumns: []string{"premise", "hypothesis"}},
		tsvA:     "sentence1",
		tsvB:     "sentence2",
		tsvLabel: "gold_label",
		hfA:      []string{"premise", "sentence1"},
		hfB:      []string{"hypothesis", "sentence2"},
	},
	{
		Task:     Task{Name: "qnli", Dir: "QNLI", NumLabels: 2, LabelNames: []string{"entailment", "not_entailment"}, TextColumns: []string{"question", "sentence"}},
		tsvA:     "question",
		tsvB:     "sentence",
		tsvLabel: "label",
		hfA:      []string{"question", "sentence1"},
		hfB:      []string{"sentence", "sentence2"},
	},
	{
		Task:     Task{Name: "rte", Dir: "RTE", NumLabels: 2, LabelNames: []string{"entailment", "not_entailment"}, TextColumns: []string{"sentence1", "sentence2"}},
		tsvA:     "sentence1",
		tsvB:     "sentence2",
		tsvLabel: "label",
		hfA:      []string{"sentence1", "premise"},
		hfB:      []string{"sentence2", "hypothesis"},
	},
	{
		Task:     Task{Name: "wnli", Dir: "WNLI", NumLabels: 2, LabelNames: []string{"not_entailment", "entailment"}, TextColumns: []string{"sentence1", "sentence2"}},
		tsvA:     "sentence1",
		tsvB:     "sentence2",
		tsvLabel: "label",
		hfA:      []string{"sentence1", "premise"},
		hfB:      []string{"sentence2", "hypothesis"},
	},
}

func init() {
	for i := range specs {
		m, err := metrics.TaskMetrics(specs[i].Name)
		if err != nil {
			panic(err) // programming error: the two tables disagree
		}
		specs[i].Metrics = m
	}
}

// Tasks returns the nine GLUE tasks in the benchmark's usual order.
func Tasks() []Task {
	out := make([]Task, len(specs))
	for i, s := range specs {
		out[i] = s.Task
		out[i].LabelNames = append([]string(nil), s.LabelNames...)
		out[i].TextColumns = append([]string(nil), s.TextColumns...)
		out[i].Metrics = append([]string(nil), s.Metrics...)
	}
	return out
}

// LookupTask returns the task named name in any spelling that
// metrics.CanonicalTask accepts ("SST-2", "sst2", "MNLI", ...). The MNLI
// validation-set names mnli_matched and mnli_mismatched return the mnli task.
func LookupTask(name string) (Task, error) {
	s, _, err := lookup(name)
	if err != nil {
		return Task{}, err
	}
	for _, t := range Tasks() {
		if t.Name == s.Name {
			return t, nil
		}
	}
	panic("unreachable")
}

// lookup returns the spec and, for mnli_matched/mnli_mismatched, "matched" or
// "mismatched".
func lookup(name string) (*spec, string, error) {
	c, err := metrics.CanonicalTask(name)
	if err != nil {
		return nil, "", fmt.Errorf("glue: %s", strings.TrimPrefix(err.Error(), "metrics: "))
	}
	variant := ""
	switch c {
	case "mnli_matched":
		c, variant = "mnli", "matched"
	case "mnli_mismatched":
		c, variant = "mnli", "mismatched"
	}
	for i := range specs {
		if specs[i].Name == c {
			return &specs[i], variant, nil
		}
	}
	return nil, "", fmt.Errorf("glue: unknown task %q", name)
}

// STS-B similarity scores lie in [MinScore, MaxScore].
const (
	MinScore = 0.0
	MaxScore = 5.0
)

// checkScore refuses a similarity score outside STS-B's [0, 5] (or not finite).
func checkScore(f float64) error {
	if !(f >= MinScore && f <= MaxScore) {
		return fmt.Errorf("similarity score %v outside STS-B's [%g, %g]", f, MinScore, MaxScore)
	}
	return nil
}

// labelID maps a label string from a file to the task's class id (or score,
// for stsb). It accepts integer ids in range and the class names.
func (s *spec) labelID(v string) (float64, error) {
	v = strings.TrimSpace(v)
	if s.Regression() {
		f, err := parseFloat(v)
		if err != nil {
			return 0, fmt.Errorf("score %q is not a number", v)
		}
		return f, checkScore(f)
	}
	if id, err := parseInt(v); err == nil {
		if id < 0 || id >= s.NumLabels {
			return 0, fmt.Errorf("label %d out of range [0, %d)", id, s.NumLabels)
		}
		return float64(id), nil
	}
	for i, n := range s.LabelNames {
		if strings.EqualFold(v, n) {
			return float64(i), nil
		}
	}
	return 0, fmt.Errorf("unknown %s label %q (want 0..%d or one of %s)", s.Name, v, s.NumLabels-1, strings.Join(s.LabelNames, ", "))
}
