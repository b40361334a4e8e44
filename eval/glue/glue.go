package glue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/blockllm/blockllm-go/eval/metrics"
)

// Example is one GLUE example.
type Example struct {
	// TextA is the first (or only) sentence.
	TextA string
	// TextB is the second sentence of pair tasks; empty otherwise.
	TextB string
	// Label is the class id (0 .. NumLabels-1) for classification tasks or
	// the similarity score for stsb; -1 for unlabelled (test) examples.
	Label float64
	// Idx is the example's index: the file's idx column where it has one
	// (Hugging Face layouts), else its 0-based position among the data rows
	// of the file (which is what Hugging Face assigns to GLUE TSV rows).
	Idx int
}

// Class returns Label as a class id.
func (e Example) Class() int { return int(e.Label) }

// Layout names a file layout that Load recognises.
type Layout string

// The layouts Load detects.
const (
	// LayoutTSV is the original GLUE distribution: <Dir>/train.tsv, dev.tsv
	// (MNLI: dev_matched.tsv, dev_mismatched.tsv), test.tsv.
	LayoutTSV Layout = "glue-tsv"
	// LayoutParquet is Hugging Face's parquet export:
	// <name>/<split>-NNNNN-of-NNNNN.parquet (or <split>.parquet, or a data/
	// sub-directory), split one of train, validation, test (MNLI:
	// validation_matched, validation_mismatched, test_matched, ...).
	LayoutParquet Layout = "hf-parquet"
	// LayoutJSONL is JSON lines with Hugging Face's column names:
	// <name>/<split>.jsonl (or .json, or dev.jsonl for validation).
	LayoutJSONL Layout = "hf-jsonl"
)

// Dataset is one split of one task.
type Dataset struct {
	// Task is the task read.
	Task Task
	// Split is the Hugging Face split name: train, validation, test, or for
	// mnli validation_matched, validation_mismatched, test_matched,
	// test_mismatched.
	Split string
	// Layout is the layout the files were read in.
	Layout Layout
	// Files lists the files read, in order. With Load they are OS paths
	// under the data directory; with LoadFS they are paths in the fs.FS.
	Files []string
	// Labeled reports whether the examples carry labels (test splits don't).
	Labeled bool
	// Examples holds the examples in file order.
	Examples []Example
}

// Len returns the number of examples.
func (d *Dataset) Len() int { return len(d.Examples) }

// Labels returns the labels of the examples, in order.
func (d *Dataset) Labels() []float64 {
	out := make([]float64, len(d.Examples))
	for i, e := range d.Examples {
		out[i] = e.Label
	}
	return out
}

// ScoreTask returns the task name under which this split is scored:
// "mnli_matched" or "mnli_mismatched" for the MNLI validation and test sets,
// the task name otherwise.
func (d *Dataset) ScoreTask() string {
	if d.Task.Name == "mnli" {
		switch {
		case strings.HasSuffix(d.Split, "_mismatched"):
			return "mnli_mismatched"
		case strings.HasSuffix(d.Split, "_matched"):
			return "mnli_matched"
		}
	}
	return d.Task.Name
}

// Score scores predictions (class ids, or scores for stsb), one per example
// in order, against the dataset's labels with metrics.Score.
func (d *Dataset) Score(pred []float64) (metrics.TaskScore, error) {
	if !d.Labeled {
		return metrics.TaskScore{}, fmt.Errorf("glue: %s %s has no labels to score against", d.Task.Name, d.Split)
	}
	if len(pred) != len(d.Examples) {
		return metrics.TaskScore{}, fmt.Errorf("glue: %d predictions for %d %s %s examples", len(pred), len(d.Examples), d.Task.Name, d.Split)
	}
	return metrics.Score(d.ScoreTask(), pred, d.Labels())
}

// Majority returns the fraction of examples in the most frequent class
// (the accuracy of always predicting it); 0 for stsb or an empty set.
func (d *Dataset) Majority() float64 {
	if d.Task.Regression() || len(d.Examples) == 0 {
		return 0
	}
	counts := map[int]int{}
	best := 0
	for _, e := range d.Examples {
		counts[e.Class()]++
		best = max(best, counts[e.Class()])
	}
	return float64(best) / float64(len(d.Examples))
}

// Load reads one split of a GLUE task from dataDir, detecting the layout.
// dataDir may be the directory that holds the task directories (CoLA/,
// SST-2/, ... or cola/, sst2/, ...; matched case-insensitively, ignoring '-'
// and '_') or a task directory itself. task is any spelling of a task name
// that LookupTask accepts ("mnli_mismatched" selects the mismatched sets).
// split is train, validation (aliases dev, val), test, or for MNLI
// validation_matched, validation_mismatched, test_matched, test_mismatched
// (aliases dev_matched, matched, ...); for MNLI, validation means
// validation_matched.
//
// Layouts are tried per directory in the order GLUE TSV, parquet, JSON lines;
// the first that has files for the split is read.
func Load(dataDir, task, split string) (*Dataset, error) {
	st, err := os.Stat(dataDir)
	if err != nil {
		return nil, fmt.Errorf("glue: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("glue: %s is not a directory", dataDir)
	}
	return load(source{fsys: os.DirFS(dataDir), root: dataDir}, task, split)
}

// LoadFS is Load reading from fsys (for example the embedded demo data of
// package data); the root of fsys plays the role of dataDir.
func LoadFS(fsys fs.FS, task, split string) (*Dataset, error) {
	return load(source{fsys: fsys}, task, split)
}

// source is an fs.FS plus the OS directory it came from (for messages).
type source struct {
	fsys fs.FS
	root string
}

func (s source) display(name string) string {
	if s.root == "" {
		return name
	}
	return filepath.Join(s.root, filepath.FromSlash(name))
}

// splitNames returns the Hugging Face split name for split.
func splitName(s *spec, variant, split string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(split))
	v = strings.ReplaceAll(v, "-", "_")
	mnli := s.Name == "mnli"
	suffix := "_matched"
	if variant == "mismatched" {
		suffix = "_mismatched"
	}
	switch v {
	case "train":
		return "train", nil
	case "validation", "dev", "val", "valid", "eval":
		if mnli {
			return "validation" + suffix, nil
		}
		return "validation", nil
	case "test":
		if mnli {
			return "test" + suffix, nil
		}
		return "test", nil
	}
	if mnli {
		switch v {
		case "validation_matched", "dev_matched", "matched", "validation_m", "dev_m":
			v = "validation_matched"
		case "validation_mismatched", "dev_mismatched", "mismatched", "validation_mm", "dev_mm":
			v = "validation_mismatched"
		case "test_matched", "test_m":
			v = "test_matched"
		case "test_mismatched", "test_mm":
			v = "test_mismatched"
		default:
			v = ""
		}
		if v != "" {
			if variant != "" && !strings.HasSuffix(v, suffix) {
				return "", fmt.Errorf("glue: split %q contradicts task mnli_%s", split, variant)
			}
			return v, nil
		}
		return "", fmt.Errorf("glue: unknown mnli split %q (want train, validation_matched, validation_mismatched, test_matched or test_mismatched)", split)
	}
	return "", fmt.Errorf("glue: unknown split %q (want train, validation or test)", split)
}

// tsvName returns the GLUE file name of a Hugging Face split.
func tsvName(hfSplit string) string {
	return strings.Replace(hfSplit, "validation", "dev", 1) + ".tsv"
}

func normName(s string) string {
	s = strings.ToLower(s)
	s = strings.ReplaceAll(s, "-", "")
	return strings.ReplaceAll(s, "_", "")
}

// candidate is a directory to look in and the split name files use there.
type candidate struct {
	dir   string
	split string
}

func candidates(src source, s *spec, hfSplit string) ([]candidate, error) {
	entries, err := fs.ReadDir(src.fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("glue: reading %s: %w", src.display("."), err)
	}
	var out []candidate
	add := func(want, split string) {
		for _, e := range entries {
			if e.IsDir() && normName(e.Name()) == normName(want) {
				out = append(out, candidate{dir: e.Name(), split: split})
			}
		}
	}
	add(s.Dir, hfSplit)
	if normName(s.Name) != normName(s.Dir) {
		add(s.Name, hfSplit)
	}
	if s.Name == "mnli" && hfSplit != "train" {
		// Hugging Face also ships mnli_matched/ and mnli_mismatched/ configs
		// with plain validation and test splits.
		kind, variant, _ := strings.Cut(hfSplit, "_")
		add("mnli_"+variant, kind)
	}
	out = append(out, candidate{dir: ".", split: hfSplit})
	return out, nil
}

// found is a set of files in one layout.
type found struct {
	layout Layout
	files  []string
}

func findFiles(src source, c candidate) (*found, error) {
	exists := func(name string) bool {
		st, err := fs.Stat(src.fsys, name)
		return err == nil && !st.IsDir()
	}
	if f := path.Join(c.dir, tsvName(c.split)); exists(f) {
		return &found{LayoutTSV, []string{f}}, nil
	}
	for _, d := range []string{c.dir, path.Join(c.dir, "data")} {
		var files []string
		for _, pat := range []string{c.split + "-*.parquet", c.split + ".parquet"} {
			m, err := fs.Glob(src.fsys, path.Join(d, pat))
			if err != nil {
				return nil, fmt.Errorf("glue: %w", err)
			}
			files = append(files, m...)
		}
		if len(files) > 0 {
			sort.Strings(files)
			return &found{LayoutParquet, files}, nil
		}
	}
	names := []string{c.split + ".jsonl", c.split + ".json"}
	if strings.HasPrefix(c.split, "validation") {
		dev := strings.Replace(c.split, "validation", "dev", 1)
		names = append(names, dev+".jsonl", dev+".json")
	}
	for _, n := range names {
		if f := path.Join(c.dir, n); exists(f) {
			return &found{LayoutJSONL, []string{f}}, nil
		}
	}
	return nil, nil
}

func load(src source, task, split string) (*Dataset, error) {
	s, variant, err := lookup(task)
	if err != nil {
		return nil, err
	}
	hfSplit, err := splitName(s, variant, split)
	if err != nil {
		return nil, err
	}
	cands, err := candidates(src, s, hfSplit)
	if err != nil {
		return nil, err
	}
	var f *found
	var looked []string
	for _, c := range cands {
		f, err = findFiles(src, c)
		if err != nil {
			return nil, err
		}
		if f != nil {
			break
		}
		looked = append(looked, path.Join(c.dir, "{"+tsvName(c.split)+","+c.split+"-*.parquet,"+c.split+".jsonl}"))
	}
	if f == nil {
		where := src.root
		if where == "" {
			where = "the file system"
		}
		return nil, fmt.Errorf("glue: no %s %s data in %s (task directory %s/ or %s/; looked for %s)",
			s.Name, hfSplit, where, s.Dir, s.Name, strings.Join(looked, ", "))
	}
	ds := &Dataset{Task: Tasks()[indexOf(s)], Split: hfSplit, Layout: f.layout}
	var labeled []bool
	for _, name := range f.files {
		ds.Files = append(ds.Files, src.display(name))
		var ex []Example
		var lab bool
		switch f.layout {
		case LayoutTSV:
			ex, lab, err = readTSV(src, name, s)
		case LayoutParquet:
			ex, lab, err = readParquet(src, name, s)
		case LayoutJSONL:
			ex, lab, err = readJSONL(src, name, s)
		}
		if err != nil {
			return nil, err
		}
		ds.Examples = append(ds.Examples, ex...)
		if len(ex) > 0 {
			labeled = append(labeled, lab)
		}
	}
	if len(ds.Examples) == 0 {
		return nil, fmt.Errorf("glue: %s holds no examples", strings.Join(ds.Files, ", "))
	}
	ds.Labeled = labeled[0]
	for i, l := range labeled {
		if l != ds.Labeled {
			return nil, fmt.Errorf("glue: %s is labelled but %s is not", ds.Files[0], ds.Files[i])
		}
	}
	return ds, nil
}

func indexOf(s *spec) int {
	for i := range specs {
		if &specs[i] == s {
			return i
		}
	}
	panic("glue: spec not in table")
}

func parseInt(s string) (int, error) {
	return strconv.Atoi(strings.TrimSpace(s))
}

func parseFloat(s string) (float64, error) {
	return strconv.ParseFloat(strings.TrimSpace(s), 64)
}

// labelState tracks whether all rows of a file agree on being labelled.
type labelState struct {
	seen    bool
	labeled bool
}

// note records one row's labelled-ness and errors on a mix.
func (l *labelState) note(labeled bool) error {
	if !l.seen {
		l.seen, l.labeled = true, labeled
		return nil
	}
	if l.labeled != labeled {
		if labeled {
			return errors.New("labelled row in a file whose earlier rows are unlabelled (label -1 or null)")
		}
		return errors.New("unlabelled row (label -1 or null) in a file whose earlier rows are labelled")
	}
	return nil
}
