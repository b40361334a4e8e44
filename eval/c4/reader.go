// Package c4 streams pretraining text — C4-style JSON lines (optionally
// gzip- or zstd-compressed), plain text and fortune(6) files — and packs it
// into fixed-length token blocks for causal language modelling, with a
// deterministic train/validation split and a resumable position.
//
// Everything is pure Go and streams with bounded memory: a Reader holds one
// line (at most Options.MaxLineBytes) or one document at a time, and a Packer
// holds one block plus the tokens of the documents it straddles.
//
// Errors are prefixed "c4:" and name the file and line at fault.
package c4

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Format selects how files are split into documents.
type Format int

const (
	// FormatAuto decides by content first, then by name: FormatParquet for a
	// parquet file, FormatJSONL for names ending in .json or .jsonl (before an
	// optional .gz, .zst, .bz2 or .xz) and FormatText for other text. Archives and
	// other binary content are refused.
	FormatAuto Format = iota
	// FormatJSONL reads one JSON object per line and takes its text field
	// (Options.TextField, default "text"), as in the C4, RedPajama and Dolma
	// releases. Blank lines are skipped; every other line is a document.
	FormatJSONL
	// FormatText reads plain text in which documents (paragraphs) are
	// separated by one or more blank (whitespace-only) lines. Lines of a
	// document are joined with "\n"; the text is not otherwise changed.
	FormatText
	// FormatFortune reads fortune(6) files, in which documents are separated
	// by lines containing only "%". Blank lines inside a fortune are kept;
	// leading and trailing blank lines of each fortune and whitespace-only
	// fortunes are dropped.
	FormatFortune
	// FormatWholeFile makes each file one document (its whole content, with
	// trailing newlines removed); empty files yield no document.
	FormatWholeFile
	// FormatParquet reads a parquet file's text column (Options.TextField), one
	// document per row (Hugging Face datasets' parquet shards). FormatAuto picks it
	// for files that start with parquet's magic "PAR1", whatever their name.
	FormatParquet
)

// String returns the format's name.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatJSONL:
		return "jsonl"
	case FormatText:
		return "text"
	case FormatFortune:
		return "fortune"
	case FormatWholeFile:
		return "whole-file"
	case FormatParquet:
		return "parquet"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses a format name as String writes it.
func ParseFormat(s string) (Format, error) {
	for f := FormatAuto; f <= FormatParquet; f++ {
		if strings.EqualFold(s, f.String()) {
			return f, nil
		}
	}
	return 0, fmt.Errorf("c4: unknown format %q (want auto, jsonl, text, fortune, whole-file or parquet)", s)
}

// DefaultMaxLineBytes is the longest line a Reader accepts when
// Options.MaxLineBytes is 0.
const DefaultMaxLineBytes = 64 << 20

// Options configures a Reader. The zero value reads C4 JSON lines or text by
// file name.
type Options struct {
	// Format selects the document format; FormatAuto decides per file.
	Format Format
	// TextField is the JSON field holding the text; "text" when empty.
	TextField string
	// MaxLineBytes bounds the length of one line (and so the memory used);
	// DefaultMaxLineBytes when 0. Longer lines are an error.
	MaxLineBytes int
}

// Position identifies a document in a Reader's file list: the document
// after the first Doc documents of file File. The zero Position is the
// start. Positions serialise to JSON for checkpoints.
type Position struct {
	// File indexes Reader.Files.
	File int `json:"file"`
	// Name is the file's name. When not empty, Seek checks that its base
	// name (after the last slash or backslash) matches file File, so that
	// a checkpoint is not resumed on different data while the data may
	// still move to another directory.
	Name string `json:"name,omitempty"`
	// Doc counts the documents of that file before this one.
	Doc int64 `json:"doc"`
}

// Document is one document read.
type Document struct {
	// Text is the document text.
	Text string
	// File is the file it came from (an OS path for Open, an fs.FS path
	// for OpenFS).
	File string
	// Line is the 1-based line of the file where the document starts.
	Line int
	// Pos is the position of this document (Seek(Pos) makes it the next
	// document read).
	Pos Position
}

// Reader streams documents from a list of files in order. It is not safe for
// concurrent use.
type Reader struct {
	fsys  fs.FS
	files []string
	opts  Options

	pos    Position // of the next document
	cur    *fileReader
	closed bool
}

// osFS opens OS paths (relative or absolute) unchanged.
type osFS struct{}

func (osFS) Open(name string) (fs.File, error) { return os.Open(name) }

// Open returns a Reader over the files matched by patterns, in order. Each
// pattern is a file, a directory (all files under it, recursively, whose
// names end in .json, .jsonl or .txt, optionally followed by .gz or .zst,
// sorted; names starting with "." or "_" are skipped) or a filepath.Glob
// pattern (matches sorted). A pattern that matches nothing is an error; a
// file matched twice is read once. opts may be nil.
func Open(patterns []string, opts *Options) (*Reader, error) {
	var files []string
	for _, p := range patterns {
		m, err := expand(osFS{}, p, true)
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	return newReader(osFS{}, files, opts)
}

// OpenFS is Open on an fs.FS (for example the embedded demo data of package
// data); patterns are slash-separated paths or fs.Glob patterns.
func OpenFS(fsys fs.FS, patterns []string, opts *Options) (*Reader, error) {
	var files []string
	for _, p := range patterns {
		m, err := expand(fsys, p, false)
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	return newReader(fsys, files, opts)
}

func newReader(fsys fs.FS, files []string, opts *Options) (*Reader, error) {
	if len(files) == 0 {
		return nil, errors.New("c4: no input files")
	}
	r := &Reader{fsys: fsys}
	if opts != nil {
		r.opts = *opts
	}
	if r.opts.TextField == "" {
		r.opts.TextField = "text"
	}
	if r.opts.MaxLineBytes <= 0 {
		r.opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if r.opts.Format < FormatAuto || r.opts.Format > FormatParquet {
		return nil, fmt.Errorf("c4: unknown format %d", int(r.opts.Format))
	}
	seen := map[string]bool{}
	for _, f := range files {
		if !seen[f] {
			seen[f] = true
			r.files = append(r.files, f)
		}
	}
	return r, nil
}

// compressionSuffixes are the compressed-file name endings the reader decompresses.
var compressionSuffixes = []string{".gz", ".zst", ".bz2", ".xz"}

// stripCompression removes one compression suffix from a lower-cased name.
func stripCompression(n string) string {
	for _, c := range compressionSuffixes {
		if strings.HasSuffix(n, c) {
			return strings.TrimSuffix(n, c)
		}
	}
	return n
}

// dataExt reports whether name looks like a data file for directory listing.
func dataExt(name string) bool {
	n := stripCompression(strings.ToLower(name))
	return strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".jsonl") || strings.HasSuffix(n, ".txt") || strings.HasSuffix(n, ".parquet")
}

func hidden(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// expand lists the files of one pattern; isOS selects OS path semantics.
func expand(fsys fs.FS, p string, isOS bool) ([]string, error) {
	var (
		st  fs.FileInfo
		err error
	)
	if isOS {
		st, err = os.Stat(p)
	} else {
		st, err = fs.Stat(fsys, p)
	}
	if err == nil {
		if !st.IsDir() {
			return []string{p}, nil
		}
		var out []string
		visit := func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if q != p && hidden(d.Name()) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if !d.IsDir() && dataExt(d.Name()) {
				out = append(out, q)
			}
			return nil
		}
		if isOS {
			err = filepath.WalkDir(p, visit)
		} else {
			err = fs.WalkDir(fsys, p, visit)
		}
		if err != nil {
			return nil, fmt.Errorf("c4: %w", err)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("c4: directory %s holds no .json, .jsonl, .txt or .parquet files (optionally .gz, .zst, .bz2 or .xz)", p)
		}
		sort.Strings(out)
		return out, nil
	}
	var m []string
	if isOS {
		m, err = filepath.Glob(p)
	} else {
		m, err = fs.Glob(fsys, p)
	}
	if err != nil {
		return nil, fmt.Errorf("c4: bad pattern %q: %w", p, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("c4: %s: no such file, directory or glob match", p)
	}
	sort.Strings(m)
	return m, nil
}

// Files returns the files the Reader reads, in order.
func (r *Reader) Files() []string { return append([]string(nil), r.files...) }

// Position returns the position of the next document Next will return.
func (r *Reader) Position() Position {
	p := r.pos
	if p.File < len(r.files) {
		p.Name = r.files[p.File]
	}
	return p
}

// Next returns the next document, or io.EOF after the last one.
func (r *Reader) Next() (Document, error) {
	if r.closed {
		return Document{}, errors.New("c4: Next on a closed Reader")
	}
	for r.pos.File < len(r.files) {
		if r.cur == nil {
			fr, err := r.openFile(r.pos.File)
			if err != nil {
				return Document{}, err
			}
			r.cur = fr
		}
		text, line, err := r.cur.read(false)
		if err == io.EOF {
			r.cur.close()
			r.cur = nil
			r.pos = Position{File: r.pos.File + 1}
			continue
		}
		if err != nil {
			return Document{}, err
		}
		d := Document{Text: text, File: r.files[r.pos.File], Line: line, Pos: r.Position()}
		r.pos.Doc++
		return d, nil
	}
	return Document{}, io.EOF
}

// Seek makes the document at p the next one Next returns. It reopens p's
// file and skips p.Doc documents (re-reading, and for compressed files
// decompressing, that part of the file; JSON lines are skipped without being
// decoded). A non-empty p.Name that differs from file p.File is an error.
// Seek(Position{}) rewinds to the start.
func (r *Reader) Seek(p Position) error {
	if r.closed {
		return errors.New("c4: Seek on a closed Reader")
	}
	if p.File < 0 || p.File > len(r.files) || p.Doc < 0 || (p.File == len(r.files) && p.Doc != 0) {
		return fmt.Errorf("c4: position %+v outside the %d files", p, len(r.files))
	}
	if p.Name != "" && (p.File == len(r.files) || baseName(p.Name) != baseName(r.files[p.File])) {
		name := ""
		if p.File < len(r.files) {
			name = r.files[p.File]
		}
		return fmt.Errorf("c4: position names file %q but file %d is %q (different data?)", p.Name, p.File, name)
	}
	if r.cur != nil {
		r.cur.close()
		r.cur = nil
	}
	r.pos = Position{File: p.File}
	if p.File == len(r.files) {
		return nil
	}
	fr, err := r.openFile(p.File)
	if err != nil {
		return err
	}
	r.cur = fr
	for r.pos.Doc < p.Doc {
		if _, _, err := fr.read(true); err != nil {
			if err == io.EOF {
				return fmt.Errorf("c4: %s has %d documents, cannot seek to document %d", r.files[p.File], r.pos.Doc, p.Doc)
			}
			return err
		}
		r.pos.Doc++
	}
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Close releases the open file. The Reader cannot be used afterwards.
func (r *Reader) Close() error {
	if r.cur != nil {
		r.cur.close()
		r.cur = nil
	}
	r.closed = true
	return nil
}

// fileReader reads documents from one file.
type fileReader struct {
	name    string
	format  Format
	field   string
	maxLine int
	closers []func()
	sc      *bufio.Scanner
	line    int
	done    bool
	pq      *parquetRows // FormatParquet
}

func formatOf(name string, f Format) Format {
	if f != FormatAuto {
		return f
	}
	n := stripCompression(strings.ToLower(name))
	if strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".jsonl") {
		return FormatJSONL
	}
	return FormatText
}

// archives are magic numbers of containers the reader cannot take documents from.
var archives = []struct {
	magic []byte
	what  string
}{
	{[]byte("PK\x03\x04"), "a zip archive"},
	{[]byte("7z\xbc\xaf\x27\x1c"), "a 7-Zip archive"},
	{[]byte("\x04\x22\x4d\x18"), "an LZ4 frame"},
	{[]byte("Rar!"), "a RAR archive"},
	{[]byte("\x89HDF"), "an HDF5 file"},
	{[]byte("ARROW1"), "an Arrow IPC file"},
}

// openFile opens file i. Compression is decided by content (gzip, zstd, bzip2 and xz
// magic numbers, whatever the file name), and so is the format where it can be: a
// parquet file is read as one, archives (zip, 7z, tar, ...) and other binary content
// are refused with what they look like, rather than read as text.
func (r *Reader) openFile(i int) (*fileReader, error) {
	name := r.files[i]
	fr := &fileReader{name: name, format: formatOf(name, r.opts.Format), field: r.opts.TextField, maxLine: r.opts.MaxLineBytes}
	f, err := r.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("c4: %w", err)
	}
	fr.closers = append(fr.closers, func() { f.Close() })
	br := bufio.NewReaderSize(f, 1<<16)
	var src io.Reader = br
	magic, _ := br.Peek(6)
	fail := func(err error) (*fileReader, error) {
		fr.close()
		return nil, fmt.Errorf("c4: %s: %w", name, err)
	}
	switch {
	case bytes.HasPrefix(magic, []byte("PAR1")):
		if r.opts.Format != FormatAuto && r.opts.Format != FormatParquet {
			return fail(fmt.Errorf("a parquet file, read as %v (use the auto or parquet format)", r.opts.Format))
		}
		fr.close()
		return r.openParquet(fr)
	case r.opts.Format == FormatParquet:
		return fail(errors.New("not a parquet file (no PAR1 magic)"))
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fail(err)
		}
		fr.closers = append(fr.closers, func() { gz.Close() })
		src = gz
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return fail(err)
		}
		fr.closers = append(fr.closers, zr.Close)
		src = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		src = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return fail(err)
		}
		src = xr
	}
	// What the (decompressed) content starts with: an archive, or binary bytes, is not
	// text or JSON lines.
	cb := bufio.NewReaderSize(src, 1<<16)
	head, _ := cb.Peek(8192)
	for _, a := range archives {
		if bytes.HasPrefix(head, a.magic) {
			return fail(fmt.Errorf("%s, not text or JSON lines: unpack it and pass its files", a.what))
		}
	}
	if len(head) > 262 && bytes.Equal(head[257:262], []byte("ustar")) {
		return fail(errors.New("a tar archive, not text or JSON lines: unpack it and pass its files"))
	}
	if bytes.HasPrefix(head, []byte("PAR1")) {
		return fail(errors.New("a compressed parquet file: decompress it first (parquet compresses its own pages)"))
	}
	if k := bytes.IndexByte(head, 0); k >= 0 {
		return fail(fmt.Errorf("binary content (a NUL byte at offset %d), not text or JSON lines (formats read: .json/.jsonl lines, text, .parquet; compressed with gzip, zstd, bzip2 or xz)", k))
	}
	fr.sc = bufio.NewScanner(cb)
	fr.sc.Buffer(make([]byte, 0, min(64<<10, r.opts.MaxLineBytes)), r.opts.MaxLineBytes)
	return fr, nil
}

func (fr *fileReader) close() {
	for i := len(fr.closers) - 1; i >= 0; i-- {
		fr.closers[i]()
	}
	fr.closers = nil
}

// scan reads the next line (without "\n" or "\r\n"); io.EOF at the end. The
// slice is valid until the next call.
func (fr *fileReader) scan() ([]byte, error) {
	if fr.done {
		return nil, io.EOF
	}
	if !fr.sc.Scan() {
		fr.done = true
		if err := fr.sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return nil, fmt.Errorf("c4: %s:%d: line longer than %d bytes (raise Options.MaxLineBytes)", fr.name, fr.line+1, fr.maxLine)
			}
			return nil, fmt.Errorf("c4: %s:%d: %w", fr.name, fr.line+1, err)
		}
		return nil, io.EOF
	}
	fr.line++
	b := fr.sc.Bytes()
	if fr.line == 1 {
		b = bytes.TrimPrefix(b, []byte("\ufeff"))
	}
	return bytes.TrimSuffix(b, []byte("\r")), nil
}

func blank(b []byte) bool { return len(bytes.TrimSpace(b)) == 0 }

// read returns the next document and its starting line, or io.EOF. With
// skip, JSON lines are not decoded (the text returned is empty).
func (fr *fileReader) read(skip bool) (string, int, error) {
	switch fr.format {
	case FormatParquet:
		return fr.readParquet()
	case FormatJSONL:
		for {
			b, err := fr.scan()
			if err != nil {
				return "", 0, err
			}
			if blank(b) {
				continue
			}
			if skip {
				return "", fr.line, nil
			}
			text, err := fr.decode(b)
			if err != nil {
				return "", 0, err
			}
			return text, fr.line, nil
		}
	case FormatText, FormatFortune:
		var buf strings.Builder
		start := 0
		for {
			b, err := fr.scan()
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", 0, err
			}
			var sep bool
			if fr.format == FormatFortune {
				sep = string(bytes.TrimRight(b, " \t")) == "%"
				if !sep && start == 0 && blank(b) {
					continue // leading blank lines of a fortune
				}
			} else {
				sep = blank(b)
			}
			if sep {
				if start != 0 {
					break
				}
				continue
			}
			if start == 0 {
				start = fr.line
			} else {
				buf.WriteByte('\n')
			}
			buf.Write(b)
		}
		if start == 0 {
			return "", 0, io.EOF
		}
		text := buf.String()
		if fr.format == FormatFortune {
			text = strings.TrimRight(text, " \t\n")
		}
		return text, start, nil
	case FormatWholeFile:
		if fr.line > 0 || fr.done {
			return "", 0, io.EOF
		}
		var buf strings.Builder
		for {
			b, err := fr.scan()
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", 0, err
			}
			if fr.line > 1 {
				buf.WriteByte('\n')
			}
			buf.Write(b)
		}
		text := strings.TrimRight(buf.String(), "\n")
		if text == "" {
			return "", 0, io.EOF
		}
		return text, 1, nil
	}
	return "", 0, fmt.Errorf("c4: unknown format %v", fr.format)
}

func (fr *fileReader) decode(b []byte) (string, error) {
	if fr.field == "text" {
		var doc struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return "", fr.jsonErr(err)
		}
		if doc.Text == nil {
			return "", fmt.Errorf("c4: %s:%d: no string field %q", fr.name, fr.line, fr.field)
		}
		return *doc.Text, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return "", fr.jsonErr(err)
	}
	var s *string
	if raw, ok := obj[fr.field]; ok {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("c4: %s:%d: field %q is not a string", fr.name, fr.line, fr.field)
		}
	}
	if s == nil {
		return "", fmt.Errorf("c4: %s:%d: no string field %q", fr.name, fr.line, fr.field)
	}
	return *s, nil
}

func (fr *fileReader) jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("c4: %s:%d: field %q is %s, not a string", fr.name, fr.line, te.Field, te.Value)
	}
	return fmt.Errorf("c4: %s:%d: bad JSON: %v", fr.name, fr.line, err)
}
