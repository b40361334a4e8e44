package c4

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/blockllm/blockllm-go/eval/internal/fsutil"
)

// parquetRows reads the text column of a parquet file in batches of rows.
type parquetRows struct {
	r    *parquet.Reader
	col  int
	buf  []parquet.Row
	n, i int
	eof  bool
}

// openParquet makes fr read fr.name as parquet: documents are the rows' text column
// (Options.TextField, "text" by default); Line numbers count rows from 1.
func (r *Reader) openParquet(fr *fileReader) (fr2 *fileReader, err error) {
	defer func() {
		if p := recover(); p != nil { // parquet-go may panic on corrupt files
			fr.close()
			fr2, err = nil, fmt.Errorf("c4: %s: corrupt parquet file: %v", fr.name, p)
		}
	}()
	ra, size, closer, err := fsutil.OpenReaderAt(r.fsys, fr.name)
	if err != nil {
		return nil, fmt.Errorf("c4: %w", err)
	}
	fr.closers = append(fr.closers, closer)
	pf, err := parquet.OpenFile(ra, size)
	if err != nil {
		fr.close()
		return nil, fmt.Errorf("c4: %s: %w", fr.name, err)
	}
	c, ok := pf.Schema().Lookup(fr.field)
	if !ok {
		fr.close()
		return nil, fmt.Errorf("c4: %s: no %q column (schema: %s)", fr.name, fr.field, pf.Schema())
	}
	if c.Node.Type().Kind() != parquet.ByteArray {
		fr.close()
		return nil, fmt.Errorf("c4: %s: column %q has type %v, want a string", fr.name, fr.field, c.Node.Type())
	}
	pr := parquet.NewReader(pf)
	fr.closers = append(fr.closers, func() { pr.Close() })
	fr.format = FormatParquet
	fr.pq = &parquetRows{r: pr, col: c.ColumnIndex, buf: make([]parquet.Row, 64)}
	return fr, nil
}

// readParquet returns the next row's text and its 1-based row number, or io.EOF.
func (fr *fileReader) readParquet() (text string, row int, err error) {
	defer func() {
		if p := recover(); p != nil {
			text, row, err = "", 0, fmt.Errorf("c4: %s: row %d: corrupt parquet file: %v", fr.name, fr.line+1, p)
		}
	}()
	q := fr.pq
	for q.i >= q.n {
		if q.eof {
			return "", 0, io.EOF
		}
		n, err := q.r.ReadRows(q.buf)
		q.n, q.i = n, 0
		if err == io.EOF {
			q.eof = true
		} else if err != nil {
			return "", 0, fmt.Errorf("c4: %s: row %d: %w", fr.name, fr.line+1, err)
		}
	}
	rw := q.buf[q.i]
	q.i++
	fr.line++
	for _, v := range rw {
		if v.Column() != q.col {
			continue
		}
		if v.IsNull() {
			return "", 0, fmt.Errorf("c4: %s: row %d: column %q is null", fr.name, fr.line, fr.field)
		}
		return string(v.ByteArray()), fr.line, nil
	}
	return "", 0, fmt.Errorf("c4: %s: row %d: no %q value", fr.name, fr.line, fr.field)
}
