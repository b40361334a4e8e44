// Command mkdemo regenerates the embedded demo data sets of package data from
// Debian's fortune cookie files (packages fortunes and fortunes-min, in
// /usr/share/games/fortunes). scripts/make-demo-data.sh runs it.
//
// It writes, under -out:
//
//   - fortunes/c4-train.00000-of-00001.json.gz and
//     fortunes/c4-validation.00000-of-00001.json.gz: every fortune of every
//     category file as a C4-style JSON line {"text", "category"}, duplicates
//     removed, in a deterministic shuffled order, split by c4.InValidation
//     (fraction -val, seed 0);
//   - demo-glue/SST-2/train.tsv and dev.tsv: a binary classification task in
//     the GLUE SST-2 layout ("sentence\tlabel" with a header): label 1 for
//     fortunes from the computing categories, 0 for fortunes from the
//     people/love/literature/wisdom categories, whitespace collapsed,
//     truncated to about 200 bytes at a word boundary, balanced, shuffled.
//
// The output depends only on the input files and the flags.
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blockllm/blockllm-go/eval/c4"
)

var (
	src     = flag.String("src", "/usr/share/games/fortunes", "directory of fortune files")
	out     = flag.String("out", "data", "output directory (the data package)")
	valFrac = flag.Float64("val", 0.05, "fraction of fortunes in the pretraining validation shard")
	devRows = flag.Int("dev", 400, "rows in the demo-glue dev set")
	maxLen  = flag.Int("maxlen", 200, "maximum sentence length in bytes for demo-glue")
	pos     = flag.String("pos", "computers,linux,perl,debian,linuxcookie", "categories labelled 1 in demo-glue")
	neg     = flag.String("neg", "people,love,literature,wisdom", "categories labelled 0 in demo-glue")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mkdemo:", err)
		os.Exit(1)
	}
}

type fortune struct {
	Text     string `json:"text"`
	Category string `json:"category"`
}

// categories lists the fortune files of dir: regular files without a dot in
// their name (skipping the .dat indexes and .u8 links).
func categories(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var cats []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.Contains(e.Name(), ".") {
			cats = append(cats, e.Name())
		}
	}
	if len(cats) == 0 {
		return nil, fmt.Errorf("no fortune files in %s (apt-get install fortunes fortunes-min)", dir)
	}
	sort.Strings(cats)
	return cats, nil
}

func readCategory(dir, cat string) ([]string, error) {
	r, err := c4.Open([]string{filepath.Join(dir, cat)}, &c4.Options{Format: c4.FormatFortune})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var texts []string
	for {
		d, err := r.Next()
		if err == io.EOF {
			return texts, nil
		}
		if err != nil {
			return nil, err
		}
		texts = append(texts, d.Text)
	}
}

func run() error {
	cats, err := categories(*src)
	if err != nil {
		return err
	}
	byCat := map[string][]string{}
	var all []fortune
	seen := map[string]bool{}
	for _, c := range cats {
		texts, err := readCategory(*src, c)
		if err != nil {
			return err
		}
		byCat[c] = texts
		for _, t := range texts {
			if !seen[t] {
				seen[t] = true
				all = append(all, fortune{Text: t, Category: c})
			}
		}
	}
	rng := rand.New(rand.NewPCG(20240601, 1))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var train, valid []fortune
	for _, f := range all {
		if c4.InValidation(f.Text, *valFrac, 0) {
			valid = append(valid, f)
		} else {
			train = append(train, f)
		}
	}
	dir := filepath.Join(*out, "fortunes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeShard(filepath.Join(dir, "c4-train.00000-of-00001.json.gz"), train); err != nil {
		return err
	}
	if err := writeShard(filepath.Join(dir, "c4-validation.00000-of-00001.json.gz"), valid); err != nil {
		return err
	}
	fmt.Printf("fortunes: %d categories, %d fortunes (%d train, %d validation)\n", len(cats), len(all), len(train), len(valid))

	// demo-glue.
	collect := func(list string) ([]string, error) {
		set := map[string]bool{}
		for _, c := range strings.Split(list, ",") {
			texts, ok := byCat[c]
			if !ok {
				return nil, fmt.Errorf("no fortune category %q in %s", c, *src)
			}
			for _, t := range texts {
				if s := sentence(t, *maxLen); len(s) >= 20 {
					set[s] = true
				}
			}
		}
		out := make([]string, 0, len(set))
		for s := range set {
			out = append(out, s)
		}
		sort.Strings(out)
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out, nil
	}
	p, err := collect(*pos)
	if err != nil {
		return err
	}
	n, err := collect(*neg)
	if err != nil {
		return err
	}
	// A sentence in both classes would be contradictory; drop it from both.
	inP := map[string]bool{}
	for _, s := range p {
		inP[s] = true
	}
	both := map[string]bool{}
	for _, s := range n {
		if inP[s] {
			both[s] = true
		}
	}
	type row struct {
		s     string
		label int
	}
	var rows []row
	k := min(len(p), len(n))
	add := func(list []string, label int) {
		m := 0
		for _, s := range list {
			if m == k {
				break
			}
			if !both[s] {
				rows = append(rows, row{s, label})
				m++
			}
		}
	}
	add(p, 1)
	add(n, 0)
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	if len(rows) <= *devRows {
		return fmt.Errorf("only %d demo-glue rows", len(rows))
	}
	gdir := filepath.Join(*out, "demo-glue", "SST-2")
	if err := os.MkdirAll(gdir, 0o755); err != nil {
		return err
	}
	write := func(name string, rs []row) error {
		f, err := os.Create(filepath.Join(gdir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		fmt.Fprintf(w, "sentence\tlabel\n")
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t%d\n", r.s, r.label)
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write("dev.tsv", rows[:*devRows]); err != nil {
		return err
	}
	if err := write("train.tsv", rows[*devRows:]); err != nil {
		return err
	}
	fmt.Printf("demo-glue: %d positive and %d negative candidates, %d train and %d dev rows\n", len(p), len(n), len(rows)-*devRows, *devRows)
	return nil
}

// sentence collapses whitespace and truncates to at most max bytes at a word
// boundary.
func sentence(t string, max int) string {
	s := strings.Join(strings.Fields(t), " ")
	if len(s) <= max {
		return s
	}
	cut := strings.LastIndexByte(s[:max+1], ' ')
	if cut <= 0 {
		cut = max
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
	}
	return s[:cut]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func writeShard(name string, docs []fortune) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	// No name or modification time in the header: the output is reproducible.
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
