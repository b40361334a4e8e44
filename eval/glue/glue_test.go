package glue

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTasks(t *testing.T) {
	ts := Tasks()
	require.Len(t, ts, 9)
	var names []string
	for _, task := range ts {
		names = append(names, task.Name)
		assert.NotEmpty(t, task.Metrics, task.Name)
		if task.Regression() {
			assert.Equal(t, "stsb", task.Name)
			assert.Nil(t, task.LabelNames)
		} else {
			assert.Len(t, task.LabelNames, task.NumLabels, task.Name)
		}
	}
	assert.Equal(t, []string{"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}, names)
	mnli, err := LookupTask("MNLI-mm")
	require.NoError(t, err)
	assert.Equal(t, []string{"entailment", "neutral", "contradiction"}, mnli.LabelNames)
	assert.True(t, mnli.Pair())
	cola, err := LookupTask("CoLA")
	require.NoError(t, err)
	assert.Equal(t, []string{"matthews_correlation"}, cola.Metrics)
	assert.False(t, cola.Pair())
	_, err = LookupTask("boolq")
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "glue: "), err.Error())
	// Tasks returns copies.
	ts[0].LabelNames[0] = "x"
	assert.Equal(t, "unacceptable", Tasks()[0].LabelNames[0])
}

type want struct {
	task, split string
	n           int
	first       Example
	labels      []float64
	labeled     bool
	scoreTask   string
}

func TestLoadTSV(t *testing.T) {
	dir := filepath.Join("testdata", "tsv")
	cases := []want{
		{task: "cola", split: "train", n: 3, labeled: true, labels: []float64{1, 0, 1},
			first: Example{TextA: "Our friends won't buy this analysis, let alone the next one we propose.", Label: 1}},
		// CRLF line ends.
		{task: "cola", split: "dev", n: 2, labeled: true, labels: []float64{0, 1},
			first: Example{TextA: "The sailors rode the breeze clear of the rocks the.", Label: 0}},
		{task: "cola", split: "test", n: 2, labeled: false, labels: []float64{-1, -1},
			first: Example{TextA: "Bill whistled past the house.", Label: -1}},
		// Unbalanced quote kept verbatim (no quote processing); trailing space kept.
		{task: "SST-2", split: "train", n: 3, labeled: true, labels: []float64{0, 1, 1},
			first: Example{TextA: "hide new secretions from the parental units ", Label: 0}},
		// Header with a byte order mark.
		{task: "mrpc", split: "validation", n: 2, labeled: true, labels: []float64{1, 0},
			first: Example{TextA: `Amrozi accused his brother , whom he called " the witness " , of deliberately distorting his evidence .`,
				TextB: `Referring to him as only " the witness " , Amrozi accused his brother of deliberately distorting his evidence .`, Label: 1}},
		{task: "sts-b", split: "dev", n: 3, labeled: true, labels: []float64{5, 4.75, 0.2},
			first: Example{TextA: "A man with a hard hat is dancing.", TextB: "A man wearing a hard hat is dancing.", Label: 5}},
		{task: "stsb", split: "test", n: 1, labeled: false, labels: []float64{-1},
			first: Example{TextA: "A girl is styling her hair.", TextB: "A girl is brushing her hair.", Label: -1}},
		{task: "qqp", split: "dev", n: 3, labeled: true, labels: []float64{0, 0, 1},
			first: Example{TextA: "Why are African-Americans so beautiful?", TextB: "Why are hispanics so beautiful?", Label: 0}},
		{task: "mnli", split: "validation", n: 3, labeled: true, labels: []float64{1, 2, 0}, scoreTask: "mnli_matched",
			first: Example{TextA: "The new rights are nice enough", TextB: "Everyone really likes the newest benefits ", Label: 1}},
		{task: "mnli", split: "validation_mismatched", n: 2, labeled: true, labels: []float64{2, 2}, scoreTask: "mnli_mismatched",
			first: Example{TextA: "Your contribution helped make it possible for us to provide our students with a quality education.",
				TextB: "Your contributions were of no help with our students' education.", Label: 2}},
		{task: "mnli_mismatched", split: "dev", n: 2, labeled: true, labels: []float64{2, 2}, scoreTask: "mnli_mismatched",
			first: Example{TextA: "Your contribution helped make it possible for us to provide our students with a quality education.",
				TextB: "Your contributions were of no help with our students' education.", Label: 2}},
		{task: "qnli", split: "dev", n: 2, labeled: true, labels: []float64{0, 1},
			first: Example{TextA: "What came into force after the new constitution was herald?", TextB: "As of that day, the new constitution heralding the Second Republic came into force.", Label: 0}},
		{task: "rte", split: "dev", n: 2, labeled: true, labels: []float64{1, 0},
			first: Example{TextA: "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44.", TextB: "Christopher Reeve had an accident.", Label: 1}},
		{task: "wnli", split: "dev", n: 2, labeled: true, labels: []float64{0, 1},
			first: Example{TextA: "The drain is clogged with hair. It has to be cleaned.", TextB: "The hair has to be cleaned.", Label: 0}},
	}
	for _, c := range cases {
		t.Run(c.task+"/"+c.split, func(t *testing.T) {
			ds, err := Load(dir, c.task, c.split)
			require.NoError(t, err)
			check(t, c, ds)
			assert.Equal(t, LayoutTSV, ds.Layout)
			require.Len(t, ds.Files, 1)
			assert.True(t, strings.HasPrefix(ds.Files[0], dir), ds.Files[0])
		})
	}
}

func check(t *testing.T, c want, ds *Dataset) {
	t.Helper()
	require.Equal(t, c.n, ds.Len())
	assert.Equal(t, c.labeled, ds.Labeled)
	assert.Equal(t, c.first, ds.Examples[0])
	assert.Equal(t, c.labels, ds.Labels())
	for i, e := range ds.Examples {
		assert.Equal(t, i, e.Idx)
	}
	st := c.scoreTask
	if st == "" {
		st = ds.Task.Name
	}
	assert.Equal(t, st, ds.ScoreTask())
	if c.labeled {
		// Perfect predictions score 100.
		s, err := ds.Score(ds.Labels())
		require.NoError(t, err)
		if ds.Task.Name == "cola" && ds.Majority() == 1 {
			// One class only: MCC is 0 by convention even for perfect predictions.
			assert.Equal(t, 0.0, s.Score)
		} else {
			assert.InDelta(t, 100, s.Score, 1e-9)
		}
	} else {
		_, err := ds.Score(ds.Labels())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no labels")
	}
}

func TestCoLAWithHeader(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "CoLA/train.tsv", "sentence\tlabel\nThe cat sat.\t1\nCat the sat.\t0\n")
	ds, err := Load(dir, "cola", "train")
	require.NoError(t, err)
	assert.Equal(t, []Example{{TextA: "The cat sat.", Label: 1}, {TextA: "Cat the sat.", Label: 0, Idx: 1}}, ds.Examples)
}

func TestLoadTaskDirDirectly(t *testing.T) {
	// dataDir may be the task directory itself.
	ds, err := Load(filepath.Join("testdata", "tsv", "RTE"), "rte", "validation")
	require.NoError(t, err)
	assert.Equal(t, 2, ds.Len())
	assert.Equal(t, filepath.Join("testdata", "tsv", "RTE", "dev.tsv"), ds.Files[0])
}

func TestLoadJSONL(t *testing.T) {
	dir := filepath.Join("testdata", "jsonl")
	cases := []want{
		// Integer and string labels mixed; a blank line skipped.
		{task: "rte", split: "train", n: 3, labeled: true, labels: []float64{1, 0, 0},
			first: Example{TextA: "No Weapons of Mass Destruction Found in Iraq Yet.", TextB: "Weapons of Mass Destruction Found in Iraq.", Label: 1}},
		{task: "stsb", split: "validation", n: 2, labeled: true, labels: []float64{5, 0.2},
			first: Example{TextA: "A man with a hard hat is dancing.", TextB: "A man wearing a hard hat is dancing.", Label: 5}},
		{task: "mnli", split: "mismatched", n: 3, labeled: true, labels: []float64{2, 0, 1}, scoreTask: "mnli_mismatched",
			first: Example{TextA: "Your contribution helped make it possible.", TextB: "Your contributions were of no help.", Label: 2}},
		{task: "sst2", split: "test", n: 2, labeled: false, labels: []float64{-1, -1},
			first: Example{TextA: "uneasy mishmash of styles and genres .", Label: -1}},
		{task: "cola", split: "dev", n: 3, labeled: true, labels: []float64{1, 1, 1},
			first: Example{TextA: "The sailors rode the breeze clear of the rocks.", Label: 1}},
	}
	for _, c := range cases {
		t.Run(c.task+"/"+c.split, func(t *testing.T) {
			ds, err := Load(dir, c.task, c.split)
			require.NoError(t, err)
			assert.Equal(t, LayoutJSONL, ds.Layout)
			check(t, c, ds)
		})
	}
}

// HF parquet row types (HF stores ClassLabel as int64, idx as int32, stsb's
// label as float32).
type pqSentence struct {
	Sentence string `parquet:"sentence"`
	Label    int64  `parquet:"label"`
	Idx      int32  `parquet:"idx"`
}

type pqPair struct {
	Sentence1 string `parquet:"sentence1"`
	Sentence2 string `parquet:"sentence2"`
	Label     int64  `parquet:"label"`
	Idx       int32  `parquet:"idx"`
}

// pqPairOptional has nullable columns, as pyarrow writes them.
type pqPairOptional struct {
	Sentence1 *string `parquet:"sentence1,optional"`
	Sentence2 *string `parquet:"sentence2,optional"`
	Label     *int64  `parquet:"label,optional"`
	Idx       *int32  `parquet:"idx,optional"`
}

type pqSTSB struct {
	Sentence1 string  `parquet:"sentence1"`
	Sentence2 string  `parquet:"sentence2"`
	Label     float32 `parquet:"label"`
	Idx       int32   `parquet:"idx"`
}

type pqQQP struct {
	Question1 string `parquet:"question1"`
	Question2 string `parquet:"question2"`
	Label     int64  `parquet:"label"`
	Idx       int32  `parquet:"idx"`
}

type pqMNLI struct {
	Premise    string `parquet:"premise"`
	Hypothesis string `parquet:"hypothesis"`
	Label      int64  `parquet:"label"`
	Idx        int32  `parquet:"idx"`
}

type pqQNLI struct {
	Question string `parquet:"question"`
	Sentence string `parquet:"sentence"`
	Label    int64  `parquet:"label"`
	Idx      int32  `parquet:"idx"`
}

// pqStringLabel has a string label column.
type pqStringLabel struct {
	Premise    string `parquet:"premise"`
	Hypothesis string `parquet:"hypothesis"`
	Label      string `parquet:"label"`
}

func writeParquet[T any](t *testing.T, name string, rows []T) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
	f, err := os.Create(name)
	require.NoError(t, err)
	w := parquet.NewGenericWriter[T](f)
	_, err = w.Write(rows)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
}

func sp(s string) *string { return &s }
func ip(i int64) *int64   { return &i }
func i32(i int32) *int32  { return &i }

func makeParquetTree(t *testing.T) string {
	dir := t.TempDir()
	one := "-00000-of-00001.parquet"
	writeParquet(t, filepath.Join(dir, "cola", "train"+one), []pqSentence{{"a b c", 1, 0}, {"c b a", 0, 1}})
	writeParquet(t, filepath.Join(dir, "sst2", "validation"+one), []pqSentence{{"good", 1, 0}, {"bad", 0, 1}, {"fine", 1, 2}})
	writeParquet(t, filepath.Join(dir, "sst2", "test"+one), []pqSentence{{"meh", -1, 0}})
	writeParquet(t, filepath.Join(dir, "mrpc", "validation"+one), []pqPair{{"x", "y", 1, 0}})
	writeParquet(t, filepath.Join(dir, "stsb", "validation"+one), []pqSTSB{{"x", "y", 3.5, 0}, {"p", "q", 0.25, 1}, {"s", "t", 5, 2}})
	writeParquet(t, filepath.Join(dir, "qqp", "validation"+one), []pqQQP{{"q1?", "q2?", 1, 0}, {"q3?", "q4?", 0, 1}})
	writeParquet(t, filepath.Join(dir, "mnli", "validation_matched"+one), []pqMNLI{{"p", "h", 2, 0}})
	writeParquet(t, filepath.Join(dir, "mnli", "validation_mismatched"+one), []pqMNLI{{"p2", "h2", 0, 0}, {"p3", "h3", 1, 1}})
	// Two shards, read in name order.
	writeParquet(t, filepath.Join(dir, "qnli", "train-00000-of-00002.parquet"), []pqQNLI{{"q?", "s.", 0, 0}, {"q2?", "s2.", 1, 1}})
	writeParquet(t, filepath.Join(dir, "qnli", "train-00001-of-00002.parquet"), []pqQNLI{{"q3?", "s3.", 1, 2}})
	// Nullable columns, in a data/ sub-directory (HF hub repos).
	writeParquet(t, filepath.Join(dir, "rte", "data", "validation"+one), []pqPairOptional{{sp("a"), sp("b"), ip(1), i32(0)}, {sp("c"), sp("d"), ip(0), i32(1)}})
	writeParquet(t, filepath.Join(dir, "wnli", "validation.parquet"), []pqPair{{"w1", "w2", 1, 0}})
	return dir
}

func TestLoadParquet(t *testing.T) {
	dir := makeParquetTree(t)
	cases := []want{
		{task: "cola", split: "train", n: 2, labeled: true, labels: []float64{1, 0}, first: Example{TextA: "a b c", Label: 1}},
		{task: "sst2", split: "validation", n: 3, labeled: true, labels: []float64{1, 0, 1}, first: Example{TextA: "good", Label: 1}},
		{task: "sst2", split: "test", n: 1, labeled: false, labels: []float64{-1}, first: Example{TextA: "meh", Label: -1}},
		{task: "mrpc", split: "validation", n: 1, labeled: true, labels: []float64{1}, first: Example{TextA: "x", TextB: "y", Label: 1}},
		{task: "stsb", split: "validation", n: 3, labeled: true, labels: []float64{3.5, 0.25, 5}, first: Example{TextA: "x", TextB: "y", Label: 3.5}},
		{task: "qqp", split: "validation", n: 2, labeled: true, labels: []float64{1, 0}, first: Example{TextA: "q1?", TextB: "q2?", Label: 1}},
		{task: "mnli", split: "validation", n: 1, labeled: true, labels: []float64{2}, scoreTask: "mnli_matched", first: Example{TextA: "p", TextB: "h", Label: 2}},
		{task: "mnli", split: "validation_mismatched", n: 2, labeled: true, labels: []float64{0, 1}, scoreTask: "mnli_mismatched", first: Example{TextA: "p2", TextB: "h2", Label: 0}},
		{task: "qnli", split: "train", n: 3, labeled: true, labels: []float64{0, 1, 1}, first: Example{TextA: "q?", TextB: "s.", Label: 0}},
		{task: "rte", split: "validation", n: 2, labeled: true, labels: []float64{1, 0}, first: Example{TextA: "a", TextB: "b", Label: 1}},
		{task: "wnli", split: "validation", n: 1, labeled: true, labels: []float64{1}, first: Example{TextA: "w1", TextB: "w2", Label: 1}},
	}
	for _, c := range cases {
		t.Run(c.task+"/"+c.split, func(t *testing.T) {
			ds, err := Load(dir, c.task, c.split)
			require.NoError(t, err)
			assert.Equal(t, LayoutParquet, ds.Layout)
			check(t, c, ds)
		})
	}
	ds, err := Load(dir, "qnli", "train")
	require.NoError(t, err)
	require.Len(t, ds.Files, 2)
	assert.True(t, strings.HasSuffix(ds.Files[1], "train-00001-of-00002.parquet"))
}

func TestLoadParquetMNLIConfigDirs(t *testing.T) {
	// HF's mnli_mismatched config: mnli_mismatched/validation-*.parquet.
	dir := t.TempDir()
	writeParquet(t, filepath.Join(dir, "mnli_mismatched", "validation-00000-of-00001.parquet"), []pqMNLI{{"p", "h", 1, 7}})
	writeParquet(t, filepath.Join(dir, "mnli_matched", "validation-00000-of-00001.parquet"), []pqMNLI{{"pm", "hm", 0, 3}})
	ds, err := Load(dir, "mnli", "validation_mismatched")
	require.NoError(t, err)
	assert.Equal(t, []Example{{TextA: "p", TextB: "h", Label: 1, Idx: 7}}, ds.Examples)
	assert.Equal(t, "mnli_mismatched", ds.ScoreTask())
	ds, err = Load(dir, "mnli_matched", "validation")
	require.NoError(t, err)
	assert.Equal(t, []Example{{TextA: "pm", TextB: "hm", Label: 0, Idx: 3}}, ds.Examples)
	_, err = Load(dir, "mnli_matched", "validation_mismatched")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "contradicts")
}

// pqArrowLike resembles what pyarrow writes for HF datasets: nullable,
// dictionary-encoded string columns in snappy-compressed pages.
type pqArrowLike struct {
	Question1 *string `parquet:"question1,optional,dict"`
	Question2 *string `parquet:"question2,optional,dict"`
	Label     *int64  `parquet:"label,optional"`
	Idx       *int32  `parquet:"idx,optional"`
}

func TestLoadParquetDictSnappy(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "qqp", "train-00000-of-00001.parquet")
	require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
	f, err := os.Create(name)
	require.NoError(t, err)
	w := parquet.NewGenericWriter[pqArrowLike](f, parquet.Compression(&parquet.Snappy), parquet.PageBufferSize(256))
	var rows []pqArrowLike
	var want []Example
	for i := 0; i < 1000; i++ {
		q1 := fmt.Sprintf("question %d?", i%37)
		q2 := fmt.Sprintf("other question %d?", i%11)
		rows = append(rows, pqArrowLike{sp(q1), sp(q2), ip(int64(i % 2)), i32(int32(i))})
		want = append(want, Example{TextA: q1, TextB: q2, Label: float64(i % 2), Idx: i})
	}
	_, err = w.Write(rows)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
	ds, err := Load(dir, "qqp", "train")
	require.NoError(t, err)
	assert.Equal(t, want, ds.Examples)
}

func TestLoadParquetStringLabels(t *testing.T) {
	dir := t.TempDir()
	writeParquet(t, filepath.Join(dir, "mnli", "train.parquet"), []pqStringLabel{{"p", "h", "contradiction"}, {"p", "h", "neutral"}})
	ds, err := Load(dir, "mnli", "train")
	require.NoError(t, err)
	assert.Equal(t, []float64{2, 1}, ds.Labels())
	assert.Equal(t, 1, ds.Examples[1].Idx) // no idx column: position
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"SST-2/train.tsv":   {Data: []byte("sentence\tlabel\ngood film\t1\nbad film\t0\n")},
		"rte/train.jsonl":   {Data: []byte(`{"sentence1": "a", "sentence2": "b", "label": "not_entailment", "idx": 0}` + "\n")},
		"unrelated/x.jsonl": {Data: []byte("junk")},
	}
	ds, err := LoadFS(fsys, "sst2", "train")
	require.NoError(t, err)
	assert.Equal(t, []string{"SST-2/train.tsv"}, ds.Files)
	assert.Equal(t, []float64{1, 0}, ds.Labels())
	assert.InDelta(t, 0.5, ds.Majority(), 1e-15)
	ds, err = LoadFS(fsys, "rte", "train")
	require.NoError(t, err)
	assert.Equal(t, []Example{{TextA: "a", TextB: "b", Label: 1}}, ds.Examples)

	// Parquet through an fs.FS whose files have no ReadAt.
	dir := makeParquetTree(t)
	b, err := os.ReadFile(filepath.Join(dir, "qqp", "validation-00000-of-00001.parquet"))
	require.NoError(t, err)
	ds, err = LoadFS(fstest.MapFS{"qqp/validation-00000-of-00001.parquet": {Data: b}}, "qqp", "dev")
	require.NoError(t, err)
	assert.Equal(t, []float64{1, 0}, ds.Labels())
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, file, content, task, split string
		wantMsg                          []string
	}{
		{"short row", "SST-2/train.tsv", "sentence\tlabel\ngood\t1\nno label here\n", "sst2", "train",
			[]string{"train.tsv:3:", "1 tab-separated fields, need at least 2"}},
		{"bad label", "RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", "rte", "train",
			[]string{"train.tsv:2:", `unknown rte label "maybe"`}},
		{"label out of range", "MNLI/train.tsv", "sentence1\tsentence2\tgold_label\na\tb\t3\n", "mnli", "train",
			[]string{"train.tsv:2:", "label 3 out of range"}},
		{"bad score", "STS-B/train.tsv", "sentence1\tsentence2\tscore\na\tb\tfive\n", "stsb", "train",
			[]string{"train.tsv:2:", `score "five" is not a number`}},
		{"score above 5", "STS-B/train.tsv", "sentence1\tsentence2\tscore\na\tb\t5.5\n", "stsb", "train",
			[]string{"train.tsv:2:", "similarity score 5.5 outside STS-B's [0, 5]"}},
		{"negative score", "STS-B/train.tsv", "sentence1\tsentence2\tscore\na\tb\t-0.5\n", "stsb", "train",
			[]string{"train.tsv:2:", "similarity score -0.5 outside"}},
		{"json score out of range", "stsb/train.jsonl", `{"sentence1": "a", "sentence2": "b", "label": 7}` + "\n", "stsb", "train",
			[]string{"train.jsonl:1:", "similarity score 7 outside"}},
		{"extra MRPC column", "MRPC/train.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\tc\n", "mrpc", "train",
			[]string{"train.tsv:2:", "6 tab-separated fields, but the header names 5 (a tab inside a sentence?)"}},
		{"missing column", "QQP/train.tsv", "id\tquestion1\tis_duplicate\n1\ta\t0\n", "qqp", "train",
			[]string{"train.tsv:1:", `no "question2" column`}},
		{"cola short", "CoLA/train.tsv", "gj04\t1\t\tfine\ngj04\t1\n", "cola", "train",
			[]string{"train.tsv:2:", "2 tab-separated fields, need at least 4"}},
		{"cola with a header but no sentence column", "CoLA/train.tsv", "text\tlabel\nfine\t1\n", "cola", "train",
			[]string{"train.tsv:1:", `no "sentence" column`}},
		{"bad json", "rte/train.jsonl", `{"sentence1": "a", "sentence2": "b", "label": 0}` + "\n{\"sentence1\": \n", "rte", "train",
			[]string{"train.jsonl:2:", "bad JSON"}},
		{"json missing text", "rte/train.jsonl", `{"premiss": "a", "sentence2": "b", "label": 0}` + "\n", "rte", "train",
			[]string{"train.jsonl:1:", `no "sentence1" or "premise" column`}},
		{"json bad class", "cola/train.jsonl", `{"sentence": "a", "label": 0.5}` + "\n", "cola", "train",
			[]string{"train.jsonl:1:", "not a class id"}},
		{"json mixed labels", "cola/train.jsonl", `{"sentence": "a", "label": 0}` + "\n" + `{"sentence": "a", "label": -1}` + "\n", "cola", "train",
			[]string{"train.jsonl:2:", "unlabelled row"}},
		{"no files", "cola/readme.txt", "hi", "cola", "validation",
			[]string{"no cola validation data", "CoLA", "dev.tsv"}},
		{"unknown split", "cola/train.jsonl", "", "cola", "validation_matched",
			[]string{`unknown split "validation_matched"`}},
		{"unknown task", "cola/train.jsonl", "", "squad", "train",
			[]string{`unknown GLUE task "squad"`}},
		{"empty", "SST-2/train.tsv", "sentence\tlabel\n", "sst2", "train",
			[]string{"holds no examples"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.file != "" {
				// The task directory must exist for the "no files" case too.
				writeFile(t, dir, c.file, c.content)
			}
			_, err := Load(dir, c.task, c.split)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "glue: "), err.Error())
			for _, m := range c.wantMsg {
				assert.Contains(t, err.Error(), m)
			}
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "absent"), "cola", "train")
	require.Error(t, err)
}

func TestParquetErrors(t *testing.T) {
	dir := t.TempDir()
	// Class id out of range in row 1.
	writeParquet(t, filepath.Join(dir, "sst2", "train.parquet"), []pqSentence{{"a", 1, 0}, {"b", 5, 1}})
	_, err := Load(dir, "sst2", "train")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "train.parquet: row 1: label 5 is not a class id")
	// Null text.
	writeParquet(t, filepath.Join(dir, "rte", "train.parquet"), []pqPairOptional{{sp("a"), nil, ip(0), i32(0)}})
	_, err = Load(dir, "rte", "train")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `row 0: column "sentence2" is null`)
	// Wrong schema.
	writeParquet(t, filepath.Join(dir, "qqp", "train.parquet"), []pqPair{{"a", "b", 0, 0}})
	_, err = Load(dir, "qqp", "train")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `no "question1" or "text1" column`)
	// Not a parquet file.
	writeFile(t, dir, "cola/train.parquet", "this is not parquet at all, not even close")
	_, err = Load(dir, "cola", "train")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "train.parquet")
}
