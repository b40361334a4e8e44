// Package fsutil holds file helpers the benchmark readers (eval/c4, eval/glue) share.
package fsutil

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
)

// OpenReaderAt opens name in fsys as an io.ReaderAt with its size (a parquet file needs
// one), reading it into memory when the file does not support ReadAt. close releases it.
func OpenReaderAt(fsys fs.FS, name string) (ra io.ReaderAt, size int64, close func(), err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if ra, ok := f.(io.ReaderAt); ok {
		return ra, st.Size(), func() { f.Close() }, nil
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, 0, nil, err
	}
	if int64(len(b)) != st.Size() && st.Size() != 0 {
		return nil, 0, nil, errors.New("short read of " + name)
	}
	return bytes.NewReader(b), int64(len(b)), func() {}, nil
}
