package c4

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func jsonl(texts ...string) string {
	var b strings.Builder
	for _, t := range texts {
		line, _ := json.Marshal(map[string]any{"text": t, "timestamp": "2019-04-25T12:57:54Z", "url": "https://example.com/"})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func gz(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func zst(t *testing.T, s string) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	require.NoError(t, err)
	_, err = w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

func readAll(t *testing.T, r *Reader) []Document {
	t.Helper()
	var out []Document
	for {
		d, err := r.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, d)
	}
}

func texts(docs []Document) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Text
	}
	return out
}

func TestReadJSONShards(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "c4-train.00000-of-00003.json", []byte(jsonl("first doc", "second \"quoted\" doc\nwith a newline")))
	write(t, dir, "c4-train.00001-of-00003.json.gz", gz(t, jsonl("third", "fourth")+"\n\n"))
	write(t, dir, "c4-train.00002-of-00003.jsonl.zst", zst(t, jsonl("fifth é ü")))
	write(t, dir, "README.md", []byte("not data"))
	write(t, dir, ".hidden.json", []byte("not data"))

	want := []string{"first doc", "second \"quoted\" doc\nwith a newline", "third", "fourth", "fifth é ü"}
	for _, pats := range [][]string{
		{filepath.Join(dir, "c4-train.*")},
		{dir},
		{filepath.Join(dir, "c4-train.00000-of-00003.json"), filepath.Join(dir, "c4-train.0000[12]*"), filepath.Join(dir, "c4-*.json")},
	} {
		r, err := Open(pats, nil)
		require.NoError(t, err)
		assert.Len(t, r.Files(), 3)
		docs := readAll(t, r)
		assert.Equal(t, want, texts(docs))
		assert.Equal(t, 2, docs[1].Line)
		assert.Equal(t, filepath.Join(dir, "c4-train.00001-of-00003.json.gz"), docs[2].File)
		assert.Equal(t, Position{File: 1, Name: docs[2].File, Doc: 1}, docs[3].Pos)
		_, err = r.Next()
		assert.Equal(t, io.EOF, err)
		require.NoError(t, r.Close())
	}
}

func TestOpenFSAndFormats(t *testing.T) {
	fortunes := "A fortune.\n%\n\nTwo lines\n\nwith a blank line inside.  \n\n%\n%\n   \n%\nLast one, no final percent"
	text := "\n\nPara one\nline two\n\n\n  \nPara two\r\n\r\nPara three\n"
	fsys := fstest.MapFS{
		"fortunes/science":    {Data: []byte(fortunes)},
		"text/book.txt":       {Data: []byte(text)},
		"text/empty.txt":      {Data: nil},
		"data/c4.json.gz":     {Data: gz(t, jsonl("x", "y"))},
		"data/sub/more.jsonl": {Data: []byte(jsonl("z"))},
	}
	r, err := OpenFS(fsys, []string{"fortunes/science"}, &Options{Format: FormatFortune})
	require.NoError(t, err)
	docs := readAll(t, r)
	assert.Equal(t, []string{"A fortune.", "Two lines\n\nwith a blank line inside.", "Last one, no final percent"}, texts(docs))
	assert.Equal(t, []int{1, 4, 12}, []int{docs[0].Line, docs[1].Line, docs[2].Line})

	r, err = OpenFS(fsys, []string{"text"}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"text/book.txt", "text/empty.txt"}, r.Files())
	docs = readAll(t, r)
	assert.Equal(t, []string{"Para one\nline two", "Para two", "Para three"}, texts(docs))
	assert.Equal(t, 3, docs[0].Line)

	r, err = OpenFS(fsys, []string{"text/*.txt"}, &Options{Format: FormatWholeFile})
	require.NoError(t, err)
	assert.Equal(t, []string{"\n\nPara one\nline two\n\n\n  \nPara two\n\nPara three"}, texts(readAll(t, r)))

	r, err = OpenFS(fsys, []string{"data"}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"x", "y", "z"}, texts(readAll(t, r)))

	f, err := ParseFormat("Fortune")
	require.NoError(t, err)
	assert.Equal(t, FormatFortune, f)
	_, err = ParseFormat("xml")
	require.Error(t, err)
}

func TestTextField(t *testing.T) {
	fsys := fstest.MapFS{"a.jsonl": {Data: []byte(`{"content": "hello", "text": 3}` + "\n")}}
	r, err := OpenFS(fsys, []string{"a.jsonl"}, &Options{TextField: "content"})
	require.NoError(t, err)
	assert.Equal(t, []string{"hello"}, texts(readAll(t, r)))
}

func TestReaderErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		data []byte
		opts *Options
		want string
	}{
		{"bad.json", []byte(jsonl("ok") + "{\"text\": \"unterminated\n"), nil, "bad.json:2: bad JSON"},
		{"bad.json.gz", gz(t, jsonl("ok", "ok")+"\n[1, 2]\n"), nil, "bad.json.gz:4:"},
		{"notext.jsonl", []byte(`{"txt": "a"}` + "\n"), nil, `notext.jsonl:1: no string field "text"`},
		{"numtext.jsonl", []byte(`{"text": 5}` + "\n"), nil, `numtext.jsonl:1: field "text" is number, not a string`},
		{"long.jsonl", []byte(jsonl(strings.Repeat("a", 200))), &Options{MaxLineBytes: 100}, "long.jsonl:1: line longer than 100 bytes"},
		{"corrupt.json.gz", append([]byte{0x1f, 0x8b}, []byte("garbage that is not gzip")...), nil, "corrupt.json.gz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, dir, c.name, c.data)
			r, err := Open([]string{p}, c.opts)
			require.NoError(t, err)
			defer r.Close()
			for {
				_, err = r.Next()
				if err != nil {
					break
				}
			}
			require.NotEqual(t, io.EOF, err)
			assert.True(t, strings.HasPrefix(err.Error(), "c4: "), err.Error())
			assert.Contains(t, err.Error(), c.want)
		})
	}
	_, err := Open([]string{filepath.Join(dir, "nothing-*.json")}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no such file, directory or glob match")
	_, err = Open([]string{t.TempDir()}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "holds no .json")
	_, err = Open(nil, nil)
	require.Error(t, err)
}

func TestSeek(t *testing.T) {
	fsys := fstest.MapFS{
		"a.json.gz": {Data: gz(t, jsonl("a0", "a1", "a2"))},
		"b.json":    {Data: []byte(jsonl("b0", "b1"))},
	}
	r, err := OpenFS(fsys, []string{"*.json*"}, nil)
	require.NoError(t, err)
	all := readAll(t, r)
	require.Len(t, all, 5)
	assert.Equal(t, Position{File: 2}, r.Position())
	for i, d := range all {
		require.NoError(t, r.Seek(d.Pos))
		assert.Equal(t, d.Pos, r.Position())
		assert.Equal(t, texts(all[i:]), texts(readAll(t, r)), "seek to %+v", d.Pos)
	}
	// Through JSON, as a checkpoint would.
	b, err := json.Marshal(all[3].Pos)
	require.NoError(t, err)
	assert.JSONEq(t, `{"file":1,"name":"b.json","doc":0}`, string(b))
	var p Position
	require.NoError(t, json.Unmarshal(b, &p))
	require.NoError(t, r.Seek(p))
	d, err := r.Next()
	require.NoError(t, err)
	assert.Equal(t, "b0", d.Text)

	require.NoError(t, r.Seek(Position{}))
	assert.Equal(t, texts(all), texts(readAll(t, r)))

	err = r.Seek(Position{File: 0, Doc: 4})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has 3 documents")
	// The data may move: only the base name is checked.
	require.NoError(t, r.Seek(Position{File: 1, Name: "/elsewhere/b.json", Doc: 1}))
	d, err = r.Next()
	require.NoError(t, err)
	assert.Equal(t, "b1", d.Text)
	err = r.Seek(Position{File: 1, Name: "other.json"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "different data")
	require.Error(t, r.Seek(Position{File: 3}))
	require.NoError(t, r.Close())
	_, err = r.Next()
	require.Error(t, err)
}

// byteTok maps each byte b to int(b)-'a'+1, so "abc" -> [1 2 3].
func byteTok(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i]) - 'a' + 1
	}
	return out
}

func packAll(t *testing.T, p *Packer) [][]int {
	t.Helper()
	var out [][]int
	for {
		b, err := p.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, b)
	}
}

func memReader(t *testing.T, docs ...string) *Reader {
	r, err := OpenFS(fstest.MapFS{"d.jsonl": {Data: []byte(jsonl(docs...))}}, []string{"d.jsonl"}, nil)
	require.NoError(t, err)
	return r
}

func TestPackExact(t *testing.T) {
	// Stream: 100 1 2 101 | 100 3 4 5 101 | 100 6 101  (12 tokens).
	docs := []string{"ab", "cde", "f"}
	cases := []struct {
		opts PackOptions
		want [][]int
	}{
		{PackOptions{BlockLen: 4, BOS: []int{100}, EOS: []int{101}},
			[][]int{{100, 1, 2, 101}, {100, 3, 4, 5}, {101, 100, 6, 101}}},
		// Stride 4: blocks [0,5), [4,9); [8,13) would need a 13th token.
		{PackOptions{BlockLen: 5, Overlap: 1, BOS: []int{100}, EOS: []int{101}},
			[][]int{{100, 1, 2, 101, 100}, {100, 3, 4, 5, 101}}},
		// EOS only (GPT-2 style): 1 2 101 3 4 5 101 6 101; tail "101" dropped.
		{PackOptions{BlockLen: 4, EOS: []int{101}},
			[][]int{{1, 2, 101, 3}, {4, 5, 101, 6}}},
		// Blocks shorter than documents, overlap 2, no separators: 1 2 3 4 5 6.
		{PackOptions{BlockLen: 3, Overlap: 2},
			[][]int{{1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {4, 5, 6}}},
		// Longer than all the data: nothing.
		{PackOptions{BlockLen: 13, BOS: []int{100}, EOS: []int{101}}, nil},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p, err := NewPacker(memReader(t, docs...), byteTok, c.opts)
			require.NoError(t, err)
			assert.Equal(t, c.want, packAll(t, p))
			_, err = p.Next()
			assert.Equal(t, io.EOF, err, "EOF is sticky")
		})
	}
}

func TestPackOptionsErrors(t *testing.T) {
	r := memReader(t, "a")
	for _, o := range []PackOptions{
		{BlockLen: 0},
		{BlockLen: 4, Overlap: 4},
		{BlockLen: 4, Overlap: -1},
		{BlockLen: 4, Split: SplitTrain},
		{BlockLen: 4, Split: SplitValidation, Validation: 1},
		{BlockLen: 4, Split: Split(7)},
	} {
		_, err := NewPacker(r, byteTok, o)
		require.Error(t, err, "%+v", o)
		assert.True(t, strings.HasPrefix(err.Error(), "c4: "))
	}
	_, err := NewPacker(r, nil, PackOptions{BlockLen: 1})
	require.Error(t, err)
}

func manyDocs(n int) []string {
	docs := make([]string, n)
	for i := range docs {
		// Lengths 1..7, letters varying.
		docs[i] = strings.Repeat(string(rune('a'+i%26)), 1+i%7)
	}
	return docs
}

func TestSplit(t *testing.T) {
	docs := make([]string, 2000)
	for i := range docs {
		docs[i] = fmt.Sprintf("document number %d", i)
	}
	var val int
	for _, d := range docs {
		if InValidation(d, 0.1, 0) {
			val++
		}
		assert.Equal(t, InValidation(d, 0.1, 0), InValidation(d, 0.1, 0))
	}
	// 200 expected; a binomial(2000, 0.1) has sd ≈ 13.4.
	assert.InDelta(t, 200, val, 70)
	assert.False(t, InValidation("x", 0, 0))
	assert.True(t, InValidation("x", 1, 0))
	// Seeds change the assignment.
	var differ int
	for _, d := range docs {
		if InValidation(d, 0.5, 1) != InValidation(d, 0.5, 2) {
			differ++
		}
	}
	assert.Greater(t, differ, 500)

	// Train and validation packers partition the documents: with BlockLen 1
	// and EOS markers the blocks spell out each split's documents.
	small := manyDocs(300)
	collect := func(s Split) []string {
		p, err := NewPacker(memReader(t, small...), byteTok, PackOptions{BlockLen: 1, EOS: []int{0}, Split: s, Validation: 0.25, Seed: 7})
		require.NoError(t, err)
		var out []string
		var cur []byte
		for _, b := range packAll(t, p) {
			if b[0] == 0 {
				out = append(out, string(cur))
				cur = nil
				continue
			}
			cur = append(cur, byte(b[0]-1+'a'))
		}
		return out
	}
	train, valid := collect(SplitTrain), collect(SplitValidation)
	assert.Equal(t, len(small), len(train)+len(valid))
	assert.NotEmpty(t, valid)
	ti, vi := 0, 0
	for _, d := range small {
		if InValidation(d, 0.25, 7) {
			assert.Equal(t, d, valid[vi])
			vi++
		} else {
			assert.Equal(t, d, train[ti])
			ti++
		}
	}
}

func TestPackResume(t *testing.T) {
	dir := t.TempDir()
	docs := manyDocs(120)
	write(t, dir, "s0.json.gz", gz(t, jsonl(docs[:50]...)))
	write(t, dir, "s1.json", []byte(jsonl(docs[50:90]...)))
	write(t, dir, "s2.json.gz", gz(t, jsonl(docs[90:]...)))
	pattern := filepath.Join(dir, "s*.json*")
	for _, opts := range []PackOptions{
		{BlockLen: 5, BOS: []int{98}, EOS: []int{99}},
		{BlockLen: 9, Overlap: 1, EOS: []int{99}},
		{BlockLen: 3, Overlap: 2, EOS: []int{99}, Split: SplitTrain, Validation: 0.3},
		{BlockLen: 4, EOS: []int{99}, Split: SplitValidation, Validation: 0.3, Seed: 3},
	} {
		r, err := Open([]string{pattern}, nil)
		require.NoError(t, err)
		p, err := NewPacker(r, byteTok, opts)
		require.NoError(t, err)
		all := packAll(t, p)
		require.Greater(t, len(all), 10)
		// The tail from a restored state equals the uninterrupted tail.
		for k := 0; k <= len(all); k += 1 + len(all)/17 {
			r1, err := Open([]string{pattern}, nil)
			require.NoError(t, err)
			p1, err := NewPacker(r1, byteTok, opts)
			require.NoError(t, err)
			for i := 0; i < k; i++ {
				_, err := p1.Next()
				require.NoError(t, err)
			}
			st := p1.State()
			assert.Equal(t, int64(k), st.Blocks)
			b, err := json.Marshal(st)
			require.NoError(t, err)
			var st2 State
			require.NoError(t, json.Unmarshal(b, &st2))

			r2, err := Open([]string{pattern}, nil)
			require.NoError(t, err)
			p2, err := NewPacker(r2, byteTok, opts)
			require.NoError(t, err)
			require.NoError(t, p2.Restore(st2))
			rest := packAll(t, p2)
			if k == len(all) {
				assert.Empty(t, rest)
				continue
			}
			assert.Equal(t, all[k:], rest, "opts %+v resume after %d blocks (state %s)", opts, k, b)
			assert.Equal(t, int64(len(all)), p2.State().Blocks)
		}
		// Restore(State{}) starts a new epoch.
		require.NoError(t, p.Restore(State{}))
		assert.Equal(t, all, packAll(t, p))
	}
}

func TestTokenizeError(t *testing.T) {
	p, err := NewPackerErr(memReader(t, "ab", "bad", "cd"), func(s string) ([]int, error) {
		if s == "bad" {
			return nil, errors.New("unknown byte")
		}
		return byteTok(s), nil
	}, PackOptions{BlockLen: 2})
	require.NoError(t, err)
	b, err := p.Next()
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, b)
	_, err = p.Next()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "c4: tokenizing the document at d.jsonl:2: unknown byte")
}

func TestRestoreErrors(t *testing.T) {
	p, err := NewPacker(memReader(t, "abc", "de"), byteTok, PackOptions{BlockLen: 2})
	require.NoError(t, err)
	// Offset beyond the document's 3 tokens.
	require.NoError(t, p.Restore(State{Offset: 3}))
	_, err = p.Next()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "offset 3 beyond the 3 tokens")
	// A state from another file.
	err = p.Restore(State{Doc: Position{Name: "other.jsonl"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "different data")
	// A document no longer in the split.
	pv, err := NewPacker(memReader(t, manyDocs(50)...), byteTok, PackOptions{BlockLen: 2, Split: SplitTrain, Validation: 0.5})
	require.NoError(t, err)
	var valDoc int64 = -1
	for i, d := range manyDocs(50) {
		if InValidation(d, 0.5, 0) {
			valDoc = int64(i)
			break
		}
	}
	require.GreaterOrEqual(t, valDoc, int64(0))
	require.NoError(t, pv.Restore(State{Doc: Position{Doc: valDoc}, Offset: 1}))
	_, err = pv.Next()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not in this split")
}

func BenchmarkReadJSONGz(b *testing.B) {
	dir := b.TempDir()
	docs := make([]string, 20000)
	for i := range docs {
		docs[i] = strings.Repeat(fmt.Sprintf("word%d ", i%100), 50)
	}
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write([]byte(jsonl(docs...)))
	w.Close()
	p := filepath.Join(dir, "c4.json.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	var n int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, _ := Open([]string{p}, nil)
		for {
			d, err := r.Next()
			if err != nil {
				break
			}
			n += int64(len(d.Text))
		}
		r.Close()
	}
	b.SetBytes(n / int64(b.N))
}
