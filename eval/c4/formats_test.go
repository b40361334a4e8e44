package c4

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

type textRow struct {
	Text string `parquet:"text"`
	URL  string `parquet:"url"`
}

// TestFormatsByContent: bzip2, xz and parquet files are read (the name does not
// matter), and archives or binary files are refused with what they are, never read as
// text.
func TestFormatsByContent(t *testing.T) {
	dir := t.TempDir()
	jsonl := `{"text": "first document"}` + "\n" + `{"text": "second document"}` + "\n"
	want := []string{"first document", "second document"}

	got, err := readFile(filepath.Join("testdata", "docs.jsonl.bz2"))
	require.NoError(t, err)
	assert.Equal(t, want, got, "bzip2")

	var xb bytes.Buffer
	xw, err := xz.NewWriter(&xb)
	require.NoError(t, err)
	_, _ = xw.Write([]byte(jsonl))
	require.NoError(t, xw.Close())
	xzPath := filepath.Join(dir, "c4-train.json.xz")
	require.NoError(t, os.WriteFile(xzPath, xb.Bytes(), 0o644))
	got, err = readFile(xzPath)
	require.NoError(t, err)
	assert.Equal(t, want, got, "xz")

	pq := filepath.Join(dir, "train-00000-of-00001.parquet")
	f, err := os.Create(pq)
	require.NoError(t, err)
	require.NoError(t, parquet.Write(f, []textRow{{"first document", "a"}, {"second document", "b"}, {"third", "c"}}))
	f.Close()
	got, err = readFile(pq)
	require.NoError(t, err)
	assert.Equal(t, append(want, "third"), got, "parquet")
	// the same file under a text name is still parquet
	renamed := filepath.Join(dir, "data.txt")
	require.NoError(t, os.Rename(pq, renamed))
	got, err = readFile(renamed)
	require.NoError(t, err)
	assert.Len(t, got, 3)
	// seeking inside a parquet file
	r, err := Open([]string{renamed}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Seek(Position{File: 0, Doc: 2}))
	d, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, "third", d.Text)
	assert.Equal(t, 3, d.Line, "parquet documents are numbered by row")
	r.Close()
	_, err = readFileOpts(renamed, &Options{TextField: "body"})
	assert.ErrorContains(t, err, `no "body" column`)

	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("c4-train.json")
	_, _ = w.Write([]byte(jsonl))
	require.NoError(t, zw.Close())
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "c4.json", Mode: 0o644, Size: int64(len(jsonl))}))
	_, _ = tw.Write([]byte(jsonl))
	require.NoError(t, tw.Close())
	var tgz bytes.Buffer
	gw := gzip.NewWriter(&tgz)
	_, _ = gw.Write(tb.Bytes())
	require.NoError(t, gw.Close())
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"c4.json.zip", zb.Bytes(), "a zip archive"},
		{"c4.tar.gz", tgz.Bytes(), "a tar archive"},
		{"model.bin", []byte("text\x00\x01\x02"), "binary content (a NUL byte at offset 4)"},
		{"weird.txt", append([]byte("7z\xbc\xaf\x27\x1c"), 0, 0), "a 7-Zip archive"},
	} {
		p := filepath.Join(dir, c.name)
		require.NoError(t, os.WriteFile(p, c.data, 0o644))
		_, err := readFile(p)
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), c.name)
			assert.Contains(t, err.Error(), c.want)
		}
	}
}

func readFile(path string) ([]string, error) { return readFileOpts(path, nil) }

func readFileOpts(path string, o *Options) ([]string, error) {
	r, err := Open([]string{path}, o)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []string
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, d.Text)
	}
}
