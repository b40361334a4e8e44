package glue

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/blockllm/blockllm-go/eval/internal/fsutil"
)

// readParquet reads a Hugging Face parquet shard. Text columns are found by
// name (see Task.TextColumns); "label" may be an integer (ClassLabel), a
// float (stsb) or a string; "idx" is optional. Nulls and -1 labels mark
// unlabelled rows. Errors name the file and 0-based row.
func readParquet(src source, name string, s *spec) (ex []Example, labeled bool, err error) {
	disp := src.display(name)
	defer func() {
		// parquet-go may panic on corrupt files; report them as errors.
		if r := recover(); r != nil {
			ex, labeled, err = nil, false, fmt.Errorf("glue: %s: corrupt parquet file: %v", disp, r)
		}
	}()
	ra, size, closer, err := fsutil.OpenReaderAt(src.fsys, name)
	if err != nil {
		return nil, false, fmt.Errorf("glue: %w", err)
	}
	defer closer()
	pf, err := parquet.OpenFile(ra, size)
	if err != nil {
		return nil, false, fmt.Errorf("glue: %s: %w", disp, err)
	}
	schema := pf.Schema()
	leaf := func(names []string) (int, string, error) {
		for _, n := range names {
			if c, ok := schema.Lookup(n); ok {
				if c.Node.Type().Kind() != parquet.ByteArray {
					return 0, "", fmt.Errorf("glue: %s: column %q has type %v, want a string", disp, n, c.Node.Type())
				}
				return c.ColumnIndex, n, nil
			}
		}
		return 0, "", fmt.Errorf("glue: %s: no %s column (schema: %s)", disp, quoteList(names), schema)
	}
	colA, nameA, err := leaf(s.hfA)
	if err != nil {
		return nil, false, err
	}
	colB, nameB := -1, ""
	if len(s.hfB) > 0 {
		if colB, nameB, err = leaf(s.hfB); err != nil {
			return nil, false, err
		}
	}
	colLabel, colIdx := -1, -1
	if c, ok := schema.Lookup("label"); ok {
		colLabel = c.ColumnIndex
	}
	if c, ok := schema.Lookup("idx"); ok {
		colIdx = c.ColumnIndex
	}

	r := parquet.NewReader(pf)
	defer r.Close()
	rows := make([]parquet.Row, 256)
	var (
		ls  labelState
		row int
	)
	for {
		n, rerr := r.ReadRows(rows)
		for _, rw := range rows[:n] {
			errf := func(format string, args ...any) error {
				return fmt.Errorf("glue: %s: row %d: %s", disp, row, fmt.Sprintf(format, args...))
			}
			e := Example{Label: -1, Idx: row}
			var haveA, haveB, lab bool
			for _, v := range rw {
				switch c := v.Column(); {
				case c == colA:
					if v.IsNull() {
						return nil, false, errf("column %q is null", nameA)
					}
					e.TextA, haveA = string(v.ByteArray()), true
				case c == colB:
					if v.IsNull() {
						return nil, false, errf("column %q is null", nameB)
					}
					e.TextB, haveB = string(v.ByteArray()), true
				case c == colIdx && !v.IsNull():
					switch v.Kind() {
					case parquet.Int32:
						e.Idx = int(v.Int32())
					case parquet.Int64:
						e.Idx = int(v.Int64())
					default:
						return nil, false, errf("idx has type %v, want an integer", v.Kind())
					}
				case c == colLabel && !v.IsNull():
					var err error
					switch v.Kind() {
					case parquet.Int32:
						e, lab, err = labelFromNumber(e, s, float64(v.Int32()))
					case parquet.Int64:
						e, lab, err = labelFromNumber(e, s, float64(v.Int64()))
					case parquet.Float:
						e, lab, err = labelFromNumber(e, s, float64(v.Float()))
					case parquet.Double:
						e, lab, err = labelFromNumber(e, s, v.Double())
					case parquet.ByteArray:
						var l float64
						l, err = s.labelID(string(v.ByteArray()))
						e.Label, lab = l, err == nil
					default:
						err = fmt.Errorf("label has type %v", v.Kind())
					}
					if err != nil {
						return nil, false, errf("%v", err)
					}
				}
			}
			if !haveA || (colB >= 0 && !haveB) {
				return nil, false, errf("missing text column")
			}
			if err := ls.note(lab); err != nil {
				return nil, false, errf("%v", err)
			}
			ex = append(ex, e)
			row++
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, false, fmt.Errorf("glue: %s: row %d: %w", disp, row, rerr)
		}
	}
	return ex, ls.labeled, nil
}
