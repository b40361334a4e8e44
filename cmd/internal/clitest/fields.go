// Package clitest holds test helpers shared by the commands' tests.
package clitest

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update-fields", false, "rewrite the golden JSON field sets under testdata/jsonfields")

// FieldSets reads JSON lines and returns, for each kind of line (its "event" field, or
// "line" when it has none), the sorted union of the key paths its lines hold: nested
// objects as "a.b", objects inside arrays as "a[].b". Lines that are not JSON objects
// are an error.
func FieldSets(out string) (map[string][]string, error) {
	sets := map[string]map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, err
		}
		kind, _ := ev["event"].(string)
		if kind == "" {
			kind = "line"
		}
		if sets[kind] == nil {
			sets[kind] = map[string]bool{}
		}
		walk(sets[kind], "", ev)
	}
	res := map[string][]string{}
	for k, s := range sets {
		var keys []string
		for p := range s {
			keys = append(keys, p)
		}
		sort.Strings(keys)
		res[k] = keys
	}
	return res, sc.Err()
}

func walk(set map[string]bool, prefix string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			set[p] = true
			walk(set, p, y)
		}
	case []any:
		for _, y := range x {
			walk(set, prefix+"[]", y)
		}
	}
}

// CheckFields compares the field sets of out (JSON lines) with the golden file
// testdata/jsonfields/NAME.json at the repository root (written by
// `go test -update-fields`): the commands' JSON lines keep their fields.
func CheckFields(t *testing.T, name, out string) {
	t.Helper()
	got, err := FieldSets(out)
	if err != nil {
		t.Fatalf("%s: output is not JSON lines: %v", name, err)
	}
	path := filepath.Join(repoRoot(t), "testdata", "jsonfields", name+".json")
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update-fields to write it)", err)
	}
	var want map[string][]string
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for kind, w := range want {
		g, ok := got[kind]
		if !ok {
			t.Errorf("%s: no %q lines any more (want fields %v)", name, kind, w)
			continue
		}
		gs := map[string]bool{}
		for _, k := range g {
			gs[k] = true
		}
		ws := map[string]bool{}
		for _, k := range w {
			ws[k] = true
			if !gs[k] {
				t.Errorf("%s: %q lines lost field %q", name, kind, k)
			}
		}
		for _, k := range g {
			if !ws[k] {
				t.Errorf("%s: %q lines gained field %q (update %s if intended)", name, kind, k, path)
			}
		}
	}
	for kind := range got {
		if _, ok := want[kind]; !ok {
			t.Errorf("%s: new kind of line %q (update %s if intended)", name, kind, path)
		}
	}
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}
