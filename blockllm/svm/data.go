package svm

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
)

// Node is one non-zero feature of a sparse vector: a 1-based feature Index
// and its Value.
type Node struct {
	Index int32
	Value float64
}

// Dataset is a labelled sparse data set as read from a LIBSVM data file.
// X[i] holds the non-zero features of row i in strictly increasing Index
// order; Y[i] is its label. MaxIndex is the largest feature index seen.
type Dataset struct {
	Y        []float64
	X        [][]Node
	MaxIndex int
}

// Len returns the number of rows.
func (d *Dataset) Len() int { return len(d.Y) }

// ReadDatasetFile reads a LIBSVM-format data file; see ReadDataset.
func ReadDatasetFile(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("svm: %w", err)
	}
	defer f.Close()
	d, err := readDataset(f, path)
	return d, err
}

// ReadDataset reads LIBSVM's sparse data format: one row per line,
// "label index:value index:value ...", with strictly increasing positive
// indices (index 0 is allowed, as in LIBSVM, for the serial numbers of
// precomputed kernels). Blank lines (and lines holding only white space) are skipped.
// A malformed line gives an error naming its line number.
func ReadDataset(r io.Reader) (*Dataset, error) {
	return readDataset(r, "input")
}

func readDataset(r io.Reader, name string) (*Dataset, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	d := &Dataset{}
	var nodes []Node
	var rowStart []int
	lineNo := 0
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// Long line: accumulate.
			buf := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				buf = append(buf, line...)
			}
			line = buf
		}
		if len(line) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("svm: %s: %w", name, err)
		}
		lineNo++
		start := len(nodes)
		y, nodesOut, maxIdx, perr := parseLine(line, nodes)
		if perr != nil {
			return nil, fmt.Errorf("svm: %s:%d: %v", name, lineNo, perr)
		}
		if nodesOut == nil { // a blank line: LIBSVM's "Wrong input format" (skipping it would shift every later prediction)
			return nil, fmt.Errorf("svm: %s:%d: empty line (every line is a label and features; LIBSVM: Wrong input format at line %d)", name, lineNo, lineNo)
		}
		nodes = nodesOut
		d.Y = append(d.Y, y)
		rowStart = append(rowStart, start)
		if maxIdx > d.MaxIndex {
			d.MaxIndex = maxIdx
		}
		if err == io.EOF {
			break
		}
	}
	d.X = make([][]Node, len(d.Y))
	for i := range d.X {
		end := len(nodes)
		if i+1 < len(rowStart) {
			end = rowStart[i+1]
		}
		d.X[i] = nodes[rowStart[i]:end:end]
	}
	return d, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// parseLine parses one data line, appending its features to nodes. It returns
// nil nodes for a blank line.
func parseLine(line []byte, nodes []Node) (float64, []Node, int, error) {
	p := 0
	n := len(line)
	for p < n && isSpace(line[p]) {
		p++
	}
	if p == n {
		return 0, nil, 0, nil
	}
	q := p
	for q < n && !isSpace(line[q]) {
		q++
	}
	y, err := parseFloat(line[p:q])
	if err != nil {
		return 0, nil, 0, fmt.Errorf("bad label %q", line[p:q])
	}
	if nodes == nil {
		nodes = make([]Node, 0, 1024)
	}
	prev := -1
	p = q
	for {
		for p < n && isSpace(line[p]) {
			p++
		}
		if p == n {
			break
		}
		q = p
		for q < n && !isSpace(line[q]) {
			q++
		}
		tok := line[p:q]
		c := bytes.IndexByte(tok, ':')
		if c <= 0 {
			return 0, nil, 0, fmt.Errorf("bad feature %q (want index:value)", tok)
		}
		idx, err := strconv.ParseInt(string(tok[:c]), 10, 32)
		if err != nil || idx < 0 {
			return 0, nil, 0, fmt.Errorf("bad feature index %q", tok[:c])
		}
		if int(idx) <= prev {
			return 0, nil, 0, fmt.Errorf("feature index %d not greater than previous %d", idx, prev)
		}
		v, err := parseFloat(tok[c+1:])
		if err != nil {
			return 0, nil, 0, fmt.Errorf("bad feature value %q", tok[c+1:])
		}
		prev = int(idx)
		nodes = append(nodes, Node{Index: int32(idx), Value: v})
		p = q
	}
	return y, nodes, max(prev, 0), nil
}

// parseFloat parses a decimal number quickly, handling the common forms
// ("1", "-0.5", "0.25") inline and deferring others to strconv.
func parseFloat(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("empty number")
	}
	// Fast path: [-+]?digits(.digits)? with at most 15 significant digits.
	i := 0
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		i++
	}
	var mant uint64
	digits := 0
	frac := 0
	seenDot := false
	ok := i < len(b)
	for ; i < len(b); i++ {
		c := b[i]
		if c >= '0' && c <= '9' {
			if mant == 0 && c == '0' && !seenDot {
				continue
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if seenDot {
				frac++
			}
			continue
		}
		if c == '.' && !seenDot {
			seenDot = true
			continue
		}
		ok = false
		break
	}
	if ok && digits <= 15 && frac <= 22 && (len(b) > 1 || b[0] != '.') && !(len(b) == 1 && (b[0] == '-' || b[0] == '+')) {
		// Exact: mant < 2^53 and 10^frac exactly representable.
		v := float64(mant) / pow10[frac]
		if neg {
			v = -v
		}
		if !(len(b) == 2 && (b[0] == '-' || b[0] == '+') && b[1] == '.') {
			return v, nil
		}
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, err
	}
	return v, nil
}

var pow10 = func() [23]float64 {
	var p [23]float64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// WriteDataset writes d in LIBSVM's data format (labels and values with %.17g).
func WriteDataset(w io.Writer, d *Dataset) error {
	bw := bufio.NewWriter(w)
	var buf []byte
	for i, y := range d.Y {
		buf = buf[:0]
		buf = strconv.AppendFloat(buf, y, 'g', -1, 64)
		for _, n := range d.X[i] {
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, int64(n.Index), 10)
			buf = append(buf, ':')
			buf = strconv.AppendFloat(buf, n.Value, 'g', -1, 64)
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("svm: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("svm: %w", err)
	}
	return nil
}

func isFinite(v float64) bool { return !math.IsInf(v, 0) && !math.IsNaN(v) }
