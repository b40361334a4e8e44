package metrics

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Metric names used as keys of TaskScore.Metrics. They match the names the
// Hugging Face "glue" metric reports.
const (
	MetricAccuracy = "accuracy"
	MetricF1       = "f1"
	MetricMCC      = "matthews_correlation"
	MetricPearson  = "pearson"
	MetricSpearman = "spearmanr"
)

// taskMetrics lists, for each canonical task name, the metrics whose mean is
// the task's GLUE score.
var taskMetrics = map[string][]string{
	"cola":            {MetricMCC},
	"sst2":            {MetricAccuracy},
	"mrpc":            {MetricF1, MetricAccuracy},
	"stsb":            {MetricPearson, MetricSpearman},
	"qqp":             {MetricF1, MetricAccuracy},
	"mnli":            {MetricAccuracy},
	"mnli_matched":    {MetricAccuracy},
	"mnli_mismatched": {MetricAccuracy},
	"qnli":            {MetricAccuracy},
	"rte":             {MetricAccuracy},
	"wnli":            {MetricAccuracy},
}

// CanonicalTask maps a GLUE task name to its canonical lower-case Hugging Face
// form: "cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "mnli_matched",
// "mnli_mismatched", "qnli", "rte" or "wnli". It accepts any case and the
// GLUE directory spellings ("SST-2", "STS-B", "CoLA"), and "mnli-m"/"mnli-mm"
// for the MNLI validation sets.
func CanonicalTask(name string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(name))
	s = strings.ReplaceAll(s, "-", "_")
	switch s {
	case "sst_2":
		s = "sst2"
	case "sts_b":
		s = "stsb"
	case "mnli_m":
		s = "mnli_matched"
	case "mnli_mm":
		s = "mnli_mismatched"
	}
	if _, ok := taskMetrics[s]; !ok {
		return "", fmt.Errorf("metrics: unknown GLUE task %q (want cola, sst2, mrpc, stsb, qqp, mnli, mnli_matched, mnli_mismatched, qnli, rte or wnli)", name)
	}
	return s, nil
}

// TaskMetrics returns the names of the metrics whose unweighted mean is the
// GLUE score of task (for example [f1 accuracy] for mrpc).
func TaskMetrics(task string) ([]string, error) {
	t, err := CanonicalTask(task)
	if err != nil {
		return nil, err
	}
	return append([]string(nil), taskMetrics[t]...), nil
}

// IsRegression reports whether task is scored as regression (only stsb).
func IsRegression(task string) bool {
	t, err := CanonicalTask(task)
	return err == nil && t == "stsb"
}

// TaskScore is the GLUE result of one task.
type TaskScore struct {
	// Task is the canonical task name (see CanonicalTask).
	Task string
	// Score is the task's GLUE score, scaled by 100: the unweighted mean of
	// the task's metrics (Matthews correlation for cola; accuracy for sst2,
	// mnli, qnli, rte, wnli; mean of F1 and accuracy for mrpc and qqp; mean
	// of Pearson and Spearman for stsb).
	Score float64
	// Metrics holds each metric, scaled by 100, keyed by the Metric* names.
	Metrics map[string]float64
	// N is the number of examples scored.
	N int
}

// Names returns the keys of Metrics in the task's reporting order.
func (s TaskScore) Names() []string {
	if m, ok := taskMetrics[s.Task]; ok {
		return append([]string(nil), m...)
	}
	names := make([]string, 0, len(s.Metrics))
	for k := range s.Metrics {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// String formats the score as, for example, "mrpc 86.12 (f1 89.90, accuracy 82.35)".
func (s TaskScore) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %.2f", s.Task, s.Score)
	names := s.Names()
	if len(names) > 1 {
		b.WriteString(" (")
		for i, n := range names {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %.2f", n, s.Metrics[n])
		}
		b.WriteString(")")
	}
	return b.String()
}

// toClasses converts float labels that must be integers to ints.
func toClasses(name string, x []float64) ([]int, error) {
	out := make([]int, len(x))
	for i, v := range x {
		if v != math.Trunc(v) || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("metrics: %s[%d] = %v is not a class id", name, i, v)
		}
		out[i] = int(v)
	}
	return out, nil
}

// Score computes the GLUE score of task from predictions and gold labels. For
// classification tasks pred and gold hold integer class ids (as float64, the
// way glue.Example stores labels); for stsb they hold similarity scores. Each
// metric and the task score are scaled by 100.
func Score(task string, pred, gold []float64) (TaskScore, error) {
	t, err := CanonicalTask(task)
	if err != nil {
		return TaskScore{}, err
	}
	if err := checkLen(len(pred), len(gold)); err != nil {
		return TaskScore{}, fmt.Errorf("%w (task %s)", err, t)
	}
	res := TaskScore{Task: t, Metrics: map[string]float64{}, N: len(pred)}
	if t == "stsb" {
		p, err := Pearson(pred, gold)
		if err != nil {
			return TaskScore{}, err
		}
		s, err := Spearman(pred, gold)
		if err != nil {
			return TaskScore{}, err
		}
		res.Metrics[MetricPearson] = 100 * p
		res.Metrics[MetricSpearman] = 100 * s
	} else {
		pi, err := toClasses("pred", pred)
		if err != nil {
			return TaskScore{}, err
		}
		gi, err := toClasses("gold", gold)
		if err != nil {
			return TaskScore{}, err
		}
		for _, m := range taskMetrics[t] {
			var v float64
			switch m {
			case MetricAccuracy:
				v, err = Accuracy(pi, gi)
			case MetricF1:
				v, err = F1(pi, gi)
			case MetricMCC:
				v, err = MatthewsCorr(pi, gi)
			}
			if err != nil {
				return TaskScore{}, fmt.Errorf("%w (task %s)", err, t)
			}
			res.Metrics[m] = 100 * v
		}
	}
	var sum float64
	for _, m := range taskMetrics[t] {
		sum += res.Metrics[m]
	}
	res.Score = sum / float64(len(taskMetrics[t]))
	return res, nil
}

// Average returns the GLUE average: the unweighted mean of the task scores,
// where MNLI counts once. MNLI may be given as "mnli" or as "mnli_matched"
// and/or "mnli_mismatched", whose scores are then averaged into one MNLI
// score (the convention of the GLUE paper and leaderboard, whose MNLI-m and
// MNLI-mm columns form one task). Tasks that are absent are simply not
// averaged; papers that exclude WNLI (as BERT does) should leave it out of
// scores. Duplicate tasks, or "mnli" together with a matched/mismatched
// entry, are an error.
func Average(scores []TaskScore) (float64, error) {
	if len(scores) == 0 {
		return 0, ErrEmpty
	}
	seen := map[string]bool{}
	var sum float64
	var n int
	var mnli []float64
	for _, s := range scores {
		t, err := CanonicalTask(s.Task)
		if err != nil {
			return 0, err
		}
		if seen[t] {
			return 0, fmt.Errorf("metrics: task %s appears twice in the GLUE average", t)
		}
		seen[t] = true
		if math.IsNaN(s.Score) {
			return 0, fmt.Errorf("metrics: task %s has a NaN score", t)
		}
		if strings.HasPrefix(t, "mnli") {
			mnli = append(mnli, s.Score)
			continue
		}
		sum += s.Score
		n++
	}
	if seen["mnli"] && len(mnli) > 1 {
		return 0, fmt.Errorf("metrics: both mnli and mnli_matched/mnli_mismatched given to the GLUE average")
	}
	if len(mnli) > 0 {
		var m float64
		for _, v := range mnli {
			m += v
		}
		sum += m / float64(len(mnli))
		n++
	}
	return sum / float64(n), nil
}
