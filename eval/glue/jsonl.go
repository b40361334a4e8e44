package glue

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// readJSONL reads JSON lines, one object per line, with Hugging Face's column
// names (see Task.TextColumns; "label", optional "idx"). Labels may be
// integers, numbers (stsb), class-name strings, or -1/null for unlabelled
// rows. Blank lines are skipped.
func readJSONL(src source, name string, s *spec) ([]Example, bool, error) {
	disp := src.display(name)
	f, err := src.fsys.Open(name)
	if err != nil {
		return nil, false, fmt.Errorf("glue: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	var (
		examples []Example
		lineNo   int
		ls       labelState
	)
	for {
		line, rerr := r.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return nil, false, fmt.Errorf("glue: %s:%d: %w", disp, lineNo+1, rerr)
		}
		if len(line) == 0 && rerr == io.EOF {
			break
		}
		lineNo++
		errf := func(format string, args ...any) error {
			return fmt.Errorf("glue: %s:%d: %s", disp, lineNo, fmt.Sprintf(format, args...))
		}
		line = bytes.TrimSpace(line)
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, []byte("\ufeff"))
		}
		if len(line) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(line, &obj); err != nil {
				return nil, false, errf("bad JSON: %v", err)
			}
			ex, labeled, err := exampleFromJSON(obj, s, len(examples))
			if err != nil {
				return nil, false, errf("%v", err)
			}
			if err := ls.note(labeled); err != nil {
				return nil, false, errf("%v", err)
			}
			examples = append(examples, ex)
		}
		if rerr == io.EOF {
			break
		}
	}
	return examples, ls.labeled, nil
}

func jsonText(obj map[string]json.RawMessage, names []string) (string, error) {
	for _, n := range names {
		raw, ok := obj[n]
		if !ok {
			continue
		}
		var v *string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", fmt.Errorf("column %q is not a string: %s", n, truncate(string(raw), 40))
		}
		if v == nil {
			return "", fmt.Errorf("column %q is null", n)
		}
		return *v, nil
	}
	return "", fmt.Errorf("no %s column", quoteList(names))
}

func exampleFromJSON(obj map[string]json.RawMessage, s *spec, pos int) (Example, bool, error) {
	ex := Example{Label: -1, Idx: pos}
	var err error
	if ex.TextA, err = jsonText(obj, s.hfA); err != nil {
		return ex, false, err
	}
	if len(s.hfB) > 0 {
		if ex.TextB, err = jsonText(obj, s.hfB); err != nil {
			return ex, false, err
		}
	}
	if raw, ok := obj["idx"]; ok {
		var idx int
		if err := json.Unmarshal(raw, &idx); err != nil {
			return ex, false, fmt.Errorf("idx %s is not an integer", truncate(string(raw), 40))
		}
		ex.Idx = idx
	}
	raw, ok := obj["label"]
	if !ok || string(raw) == "null" {
		return ex, false, nil
	}
	var label any
	if err := json.Unmarshal(raw, &label); err != nil {
		return ex, false, fmt.Errorf("bad label %s", truncate(string(raw), 40))
	}
	switch v := label.(type) {
	case float64:
		return labelFromNumber(ex, s, v)
	case string:
		l, err := s.labelID(v)
		if err != nil {
			return ex, false, err
		}
		ex.Label = l
		return ex, true, nil
	default:
		return ex, false, fmt.Errorf("label %s is neither a number nor a string", truncate(string(raw), 40))
	}
}

// labelFromNumber sets a numeric label; -1 means unlabelled.
func labelFromNumber(ex Example, s *spec, v float64) (Example, bool, error) {
	if v == -1 {
		return ex, false, nil
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ex, false, fmt.Errorf("label %v is not finite", v)
	}
	if !s.Regression() {
		if v != math.Trunc(v) || v < 0 || int(v) >= s.NumLabels {
			return ex, false, fmt.Errorf("label %v is not a class id in [0, %d)", v, s.NumLabels)
		}
	} else if err := checkScore(v); err != nil {
		return ex, false, err
	}
	ex.Label = v
	return ex, true, nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, " or ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
