package glue

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// readTSV reads a GLUE TSV file. Fields are split on tabs with no quote
// processing (Python's csv.QUOTE_NONE), because QQP and MNLI sentences
// contain unbalanced quotes. A UTF-8 byte order mark on the first line is
// dropped, "\r\n" line ends are accepted and blank lines are skipped.
//
// Columns are found by header name. A row with fewer fields than the columns read
// need, or with more fields than the header names (a tab inside a sentence would
// otherwise shift or cut the text silently), is an error naming the file and line. CoLA's train and
// dev files have no header (columns: source, label, original label,
// sentence; recognised by a first line of at least four fields whose second
// is 0 or 1); its test file, and CoLA files converted to the SST-2 layout,
// have one ("index", "sentence" or "sentence", "label").
func readTSV(src source, name string, s *spec) ([]Example, bool, error) {
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
		colA     = -1
		colB     = -1
		colLabel = -1
		need     int // fields each row must have
		header   []string
		started  bool
	)
	errf := func(format string, args ...any) error {
		return fmt.Errorf("glue: %s:%d: %s", disp, lineNo, fmt.Sprintf(format, args...))
	}
	for {
		line, rerr := r.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			return nil, false, fmt.Errorf("glue: %s:%d: %w", disp, lineNo+1, rerr)
		}
		if line == "" && rerr == io.EOF {
			break
		}
		lineNo++
		line = strings.TrimRight(line, "\r\n")
		if lineNo == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if strings.TrimSpace(line) == "" {
			if rerr == io.EOF {
				break
			}
			continue
		}
		fields := strings.Split(line, "\t")
		if !started {
			started = true
			if s.Name == "cola" && len(fields) >= 4 && (strings.TrimSpace(fields[1]) == "0" || strings.TrimSpace(fields[1]) == "1") {
				// Headerless CoLA train/dev: source, label, original label, sentence.
				colA, colLabel, need = 3, 1, 4
			} else {
				header = fields
				idx := map[string]int{}
				for i, h := range fields {
					idx[strings.TrimSpace(h)] = i
				}
				var ok bool
				if colA, ok = idx[s.tsvA]; !ok {
					return nil, false, errf("header has no %q column (header: %s)", s.tsvA, strings.Join(fields, " | "))
				}
				need = colA + 1
				if s.tsvB != "" {
					if colB, ok = idx[s.tsvB]; !ok {
						return nil, false, errf("header has no %q column (header: %s)", s.tsvB, strings.Join(fields, " | "))
					}
					need = max(need, colB+1)
				}
				if c, ok := idx[s.tsvLabel]; ok {
					colLabel = c
					need = max(need, c+1)
				}
				if rerr == io.EOF {
					break
				}
				continue
			}
		}
		if header != nil && len(fields) > len(header) {
			return nil, false, errf("%d tab-separated fields, but the header names %d (a tab inside a sentence?)", len(fields), len(header))
		}
		if len(fields) < need {
			if header != nil {
				return nil, false, errf("%d tab-separated fields, need at least %d (header has %d)", len(fields), need, len(header))
			}
			return nil, false, errf("%d tab-separated fields, need at least %d", len(fields), need)
		}
		ex := Example{TextA: fields[colA], Label: -1, Idx: len(examples)}
		if colB >= 0 {
			ex.TextB = fields[colB]
		}
		if colLabel >= 0 {
			v, err := s.labelID(fields[colLabel])
			if err != nil {
				return nil, false, errf("%v", err)
			}
			ex.Label = v
		}
		examples = append(examples, ex)
		if rerr == io.EOF {
			break
		}
	}
	return examples, colLabel >= 0, nil
}
