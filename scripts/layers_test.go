package scripts

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/blockllm/blockllm-go"

type pkgInfo struct {
	ImportPath string
	Imports    []string
	Deps       []string
	CgoFiles   []string
}

func listPackages(t *testing.T) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", "./...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkgInfo
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func hasDep(p pkgInfo, match func(string) bool) []string {
	var out []string
	for _, d := range p.Deps {
		if match(d) {
			out = append(out, d)
		}
	}
	return out
}

// TestLayers checks the layering rules of docs/DESIGN.md on the import graph:
//   - only package cgo has cgo files (imports "C");
//   - the pure-Go packages depend on neither cgo nor torch;
//   - library packages (all but cmd/... and scripts/...) depend on no terminal,
//     progress-bar, table or plotting package, except the reporting package eval/report;
//   - eval and its sub-packages do not import blockllm; hf, torch and cgo import
//     neither blockllm nor eval (no back edges).
func TestLayers(t *testing.T) {
	pure := map[string]bool{"hf/safetensors": true, "hf/tokenizer": true, "hf/config": true, "eval/metrics": true,
		"eval/c4": true, "hf/generate": true, "hf/chat": true, "blockllm/svm": true, "data": true}
	ui := regexp.MustCompile(`^(github\.com/schollz/progressbar|github\.com/olekukonko/tablewriter|gonum\.org/v1/plot|github\.com/mattn/go-isatty|github\.com/mattn/go-colorable)(/|$)`)
	uiExempt := map[string]bool{"eval/report": true}
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		if len(p.CgoFiles) > 0 && r != "cgo" {
			t.Errorf("%s has cgo files %v: only package cgo may import \"C\"", r, p.CgoFiles)
		}
		if pure[r] {
			if bad := hasDep(p, func(d string) bool { return d == module+"/cgo" || d == module+"/torch" }); len(bad) > 0 {
				t.Errorf("%s must stay pure Go but depends on %v", r, bad)
			}
		}
		library := !strings.HasPrefix(r, "cmd/") && !strings.HasPrefix(r, "scripts")
		if library && !uiExempt[r] {
			if bad := hasDep(p, ui.MatchString); len(bad) > 0 {
				t.Errorf("library package %s depends on terminal/table/plot packages %v (only eval/report may)", r, bad)
			}
		}
		if r == "eval" || strings.HasPrefix(r, "eval/") {
			if bad := hasDep(p, func(d string) bool { return d == module+"/blockllm" }); len(bad) > 0 {
				t.Errorf("%s depends on blockllm: evaluation must not depend on the trainer", r)
			}
		}
		if r == "cgo" || r == "torch" || r == "hf" || strings.HasPrefix(r, "hf/") {
			if bad := hasDep(p, func(d string) bool {
				return d == module+"/blockllm" || d == module+"/eval" || strings.HasPrefix(d, module+"/eval/") || strings.HasPrefix(d, module+"/cmd/")
			}); len(bad) > 0 {
				t.Errorf("%s depends on upper layers %v", r, bad)
			}
		}
	}
}

// TestNoPathsOutsideRepository: no tracked file but tests and test data names a path
// outside the repository (../shared, /work/...), and every mention of a DESIGN.md is
// of docs/DESIGN.md.
func TestNoPathsOutsideRepository(t *testing.T) {
	files := trackedFiles(t)
	outside := regexp.MustCompile(`\.\./shared|/work/|\.\./\.\./\.\./shared`)
	design := regexp.MustCompile(`[\w./-]*DESIGN\.md`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, "testdata/") || strings.Contains(f, "/testdata/") {
			continue
		}
		switch filepath.Ext(f) {
		case ".go", ".md", ".sh", ".py", ".h", ".cpp", "":
		default:
			continue
		}
		fh, err := os.Open(filepath.Join(repoRoot(t), f))
		if err != nil {
			continue // a deleted, not yet committed file
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if outside.MatchString(line) {
				t.Errorf("%s:%d names a path outside the repository: %s", f, n, strings.TrimSpace(line))
			}
			for _, m := range design.FindAllString(line, -1) {
				if m != "docs/DESIGN.md" && !strings.HasPrefix(f, "docs/") {
					t.Errorf("%s:%d refers to %s; the design is docs/DESIGN.md", f, n, m)
				}
			}
		}
		fh.Close()
	}
}

// TestNoBuildOutputsTracked: git tracks no executables, no file over 2 MB, and at the
// repository root only the project's own files (a binary of `go build ./cmd/pretrain`
// and debugging logs were once committed there).
func TestNoBuildOutputsTracked(t *testing.T) {
	root := map[string]bool{".gitignore": true, "Makefile": true, "README.md": true, "go.mod": true, "go.sum": true, "LICENSE": true}
	for _, f := range trackedFiles(t) {
		if !strings.Contains(f, "/") && !root[f] {
			t.Errorf("%s: a stray file at the repository root (build output or log?)", f)
		}
		fh, err := os.Open(filepath.Join(repoRoot(t), f))
		if err != nil {
			continue // a deleted, not yet committed file
		}
		st, _ := fh.Stat()
		head := make([]byte, 4)
		n, _ := fh.Read(head)
		fh.Close()
		if n == 4 && string(head) == "\x7fELF" {
			t.Errorf("%s: an executable is tracked", f)
		}
		if st != nil && st.Size() > 2<<20 {
			t.Errorf("%s: %d bytes tracked (over 2 MB)", f, st.Size())
		}
	}
}

// trackedFiles lists the files git tracks (its index), relative to the repository root;
// the test is skipped outside a git checkout.
func trackedFiles(t *testing.T) []string {
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("git ls-files: %v", err)
	}
	return strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
}
