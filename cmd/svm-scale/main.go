// Command svm-scale scales the features (and optionally the labels) of a
// LIBSVM data file to a range, like LIBSVM's svm-scale: same flags, same
// range file format both ways (-s saves it, -r restores it), same output
// byte for byte, same warnings.
//
// Usage: svm-scale [options] data_filename
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

const usage = `Usage: svm-scale [options] data_filename
options:
-l lower : x scaling lower limit (default -1)
-u upper : x scaling upper limit (default +1)
-y y_lower y_upper : y scaling limits (default: no y scaling)
-s save_filename : save scaling parameters to save_filename
-r restore_filename : restore scaling parameters from restore_filename
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "svm-scale:", err)
		os.Exit(1)
	}
}

// scaler holds svm-scale's state: the limits and the per-feature ranges.
type scaler struct {
	lower, upper       float64
	yLower, yUpper     float64
	yScaling           bool
	yMin, yMax         float64
	fMin, fMax         []float64
	maxIndex, minIndex int
	nonzeros, newNZ    int64
	out                *bufio.Writer
	buf                []byte
}

func run(args []string, stdout, stderr io.Writer) error {
	s := &scaler{lower: -1, upper: 1, yMax: -math.MaxFloat64, yMin: math.MaxFloat64}
	var saveFile, restoreFile string
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			break
		}
		need := 1
		if a == "-y" {
			need = 2
		}
		if i+need >= len(args) {
			return fmt.Errorf("option %s needs %d value(s)\n%s", a, need, usage)
		}
		num := func(v string) (float64, error) {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("option %s: bad number %q", a, v)
			}
			return f, nil
		}
		var err error
		switch a {
		case "-l":
			s.lower, err = num(args[i+1])
		case "-u":
			s.upper, err = num(args[i+1])
		case "-y":
			if s.yLower, err = num(args[i+1]); err == nil {
				s.yUpper, err = num(args[i+2])
			}
			s.yScaling = true
		case "-s":
			saveFile = args[i+1]
		case "-r":
			restoreFile = args[i+1]
		default:
			return fmt.Errorf("unknown option %s\n%s", a, usage)
		}
		if err != nil {
			return err
		}
		i += need
	}
	if !(s.upper > s.lower) || (s.yScaling && !(s.yUpper > s.yLower)) {
		return errors.New("inconsistent lower/upper specification")
	}
	if restoreFile != "" && saveFile != "" {
		return errors.New("cannot use -r and -s simultaneously")
	}
	if len(args) != i+1 {
		return fmt.Errorf("want one data file\n%s", usage)
	}
	data := args[i]

	// Pass 1: the largest (and smallest) feature index, here and in the
	// range file.
	s.minIndex = 1
	if restoreFile != "" {
		if err := s.restoreMaxIndex(restoreFile); err != nil {
			return err
		}
	}
	err := eachLine(data, func(no int, line string) error {
		p := skipTarget(line)
		for {
			idx, _, n, ok := scanFeature(p, false)
			if !ok {
				break
			}
			s.maxIndex = max(s.maxIndex, idx)
			s.minIndex = min(s.minIndex, idx)
			p = p[n:]
			s.nonzeros++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.minIndex < 1 {
		fmt.Fprintf(stderr, "WARNING: minimal feature index is %d, but indices should start from 1\n", s.minIndex)
	}
	// Feature ranges are indexed 0..maxIndex (index 0 only if present).
	s.fMax = make([]float64, s.maxIndex+1)
	s.fMin = make([]float64, s.maxIndex+1)
	for k := range s.fMax {
		s.fMax[k] = -math.MaxFloat64
		s.fMin[k] = math.MaxFloat64
	}

	// Pass 2: the ranges of the labels and features (absent features are 0).
	err = eachLine(data, func(no int, line string) error {
		target, _, ok := scanFloat(line)
		if !ok {
			return fmt.Errorf("%s:%d: failed to read labels", data, no)
		}
		s.yMax = cmax(s.yMax, target)
		s.yMin = cmin(s.yMin, target)
		p := skipTarget(line)
		next := 1
		for {
			idx, v, n, ok := scanFeature(p, true)
			if !ok {
				break
			}
			if idx < 0 || idx > s.maxIndex {
				return fmt.Errorf("%s:%d: feature index %d out of range", data, no, idx)
			}
			for k := next; k < idx; k++ {
				s.fMax[k] = cmax(s.fMax[k], 0)
				s.fMin[k] = cmin(s.fMin[k], 0)
			}
			s.fMax[idx] = cmax(s.fMax[idx], v)
			s.fMin[idx] = cmin(s.fMin[idx], v)
			p = p[n:]
			next = idx + 1
		}
		for k := next; k <= s.maxIndex; k++ {
			s.fMax[k] = cmax(s.fMax[k], 0)
			s.fMin[k] = cmin(s.fMin[k], 0)
		}
		return nil
	})
	if err != nil {
		return err
	}

	// Pass 2.5: restore or save the ranges.
	if restoreFile != "" {
		if err := s.restore(restoreFile, data, stderr); err != nil {
			return err
		}
	}
	if saveFile != "" {
		if err := s.save(saveFile); err != nil {
			return err
		}
		if s.minIndex < 1 {
			fmt.Fprintf(stderr, "WARNING: scaling factors with indices smaller than 1 are not stored to the file %s.\n", saveFile)
		}
	}

	// Pass 3: scale.
	s.out = bufio.NewWriterSize(stdout, 1<<16)
	err = eachLine(data, func(no int, line string) error {
		target, _, ok := scanFloat(line)
		if !ok {
			return fmt.Errorf("%s:%d: failed to read labels", data, no)
		}
		s.outputTarget(target)
		p := skipTarget(line)
		next := 1
		for {
			idx, v, n, ok := scanFeature(p, true)
			if !ok {
				break
			}
			for k := next; k < idx; k++ {
				s.output(k, 0)
			}
			s.output(idx, v)
			p = p[n:]
			next = idx + 1
		}
		for k := next; k <= s.maxIndex; k++ {
			s.output(k, 0)
		}
		s.out.WriteByte('\n')
		return nil
	})
	if ferr := s.out.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if s.newNZ > s.nonzeros {
		fmt.Fprintf(stderr, "WARNING: original #nonzeros %d\n"+
			"       > new      #nonzeros %d\n"+
			"If feature values are non-negative and sparse, use -l 0 rather than the default -l -1\n",
			s.nonzeros, s.newNZ)
	}
	return nil
}

// eachLine calls f with each line of the file (without its newline) and
// its 1-based number.
func eachLine(path string, f func(no int, line string) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	r := bufio.NewReaderSize(fh, 1<<20)
	for no := 1; ; no++ {
		line, err := r.ReadString('\n')
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", path, err)
		}
		if ferr := f(no, strings.TrimSuffix(line, "\n")); ferr != nil {
			return ferr
		}
		if err == io.EOF {
			return nil
		}
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func skipSpace(p string) string {
	k := 0
	for k < len(p) && isSpace(p[k]) {
		k++
	}
	return p[k:]
}

// skipTarget skips the leading white space and the label (SKIP_TARGET).
func skipTarget(p string) string {
	p = skipSpace(p)
	k := 0
	for k < len(p) && !isSpace(p[k]) {
		k++
	}
	return p[k:]
}

// scanInt reads an optionally signed decimal integer after white space,
// like sscanf's %d; n counts the bytes consumed.
func scanInt(p string) (v, n int, ok bool) {
	q := skipSpace(p)
	k := 0
	if k < len(q) && (q[k] == '+' || q[k] == '-') {
		k++
	}
	d := k
	for k < len(q) && q[k] >= '0' && q[k] <= '9' {
		k++
	}
	if k == d {
		return 0, 0, false
	}
	x, err := strconv.ParseInt(q[:k], 10, 64)
	if err != nil || x > math.MaxInt32 || x < math.MinInt32 {
		return 0, 0, false
	}
	return int(x), len(p) - len(q) + k, true
}

// scanFloat reads a number after white space like sscanf's %lf (decimal,
// exponent, inf, nan); n counts the bytes consumed.
func scanFloat(p string) (v float64, n int, ok bool) {
	q := skipSpace(p)
	k := 0
	if k < len(q) && (q[k] == '+' || q[k] == '-') {
		k++
	}
	rest := strings.ToLower(q[k:min(len(q), k+8)])
	switch {
	case strings.HasPrefix(rest, "infinity"):
		k += 8
	case strings.HasPrefix(rest, "inf"), strings.HasPrefix(rest, "nan"):
		k += 3
	default:
		d := 0
		for k < len(q) && q[k] >= '0' && q[k] <= '9' {
			k++
			d++
		}
		if k < len(q) && q[k] == '.' {
			k++
			for k < len(q) && q[k] >= '0' && q[k] <= '9' {
				k++
				d++
			}
		}
		if d == 0 {
			return 0, 0, false
		}
		if k < len(q) && (q[k] == 'e' || q[k] == 'E') {
			e := k + 1
			if e < len(q) && (q[e] == '+' || q[e] == '-') {
				e++
			}
			if e < len(q) && q[e] >= '0' && q[e] <= '9' {
				for e < len(q) && q[e] >= '0' && q[e] <= '9' {
					e++
				}
				k = e
			}
		}
	}
	x, err := strconv.ParseFloat(q[:k], 64)
	if err != nil {
		var ne *strconv.NumError
		if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
			return 0, 0, false
		}
	}
	return x, len(p) - len(q) + k, true
}

// scanFeature reads "index:value" like svm-scale's sscanf(p, "%d:%lf") (or
// "%d:%*f" when only the index is needed: then a bare index counts, as
// sscanf returns 1) and returns the bytes to skip to the next element
// (SKIP_ELEMENT).
func scanFeature(p string, needValue bool) (idx int, v float64, n int, ok bool) {
	idx, k, ok := scanInt(p)
	if !ok {
		return 0, 0, 0, false
	}
	if k < len(p) && p[k] == ':' {
		if x, m, fok := scanFloat(p[k+1:]); fok {
			v = x
			_ = m
		} else if needValue {
			return 0, 0, 0, false
		}
	} else if needValue {
		return 0, 0, 0, false
	}
	// SKIP_ELEMENT: to the next ':', past it, white space, then the value.
	c := strings.IndexByte(p, ':')
	if c < 0 {
		return idx, v, len(p), true
	}
	q := skipSpace(p[c+1:])
	e := 0
	for e < len(q) && !isSpace(q[e]) {
		e++
	}
	return idx, v, len(p) - len(q) + e, true
}

// restoreMaxIndex reads the largest index of a range file (pass 1).
func (s *scaler) restoreMaxIndex(path string) error {
	lines, err := readLines(path)
	if err != nil {
		return err
	}
	skip := 2
	if len(lines) > 0 && strings.HasPrefix(lines[0], "y") {
		skip = 5
	}
	for _, ln := range lines[min(skip, len(lines)):] {
		f := strings.Fields(ln)
		if len(f) != 3 {
			break
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil {
			break
		}
		s.maxIndex = max(s.maxIndex, idx)
	}
	return nil
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Split(string(b), "\n"), nil
}

// restore reads the y and x ranges of a range file written by -s.
func (s *scaler) restore(path, data string, stderr io.Writer) error {
	lines, err := readLines(path)
	if err != nil {
		return err
	}
	k := 0
	pair := func() (float64, float64, error) {
		if k >= len(lines) {
			return 0, 0, fmt.Errorf("%s:%d: failed to read scaling parameters", path, k+1)
		}
		f := strings.Fields(lines[k])
		if len(f) != 2 {
			return 0, 0, fmt.Errorf("%s:%d: failed to read scaling parameters", path, k+1)
		}
		a, e1 := strconv.ParseFloat(f[0], 64)
		b, e2 := strconv.ParseFloat(f[1], 64)
		if e1 != nil || e2 != nil {
			return 0, 0, fmt.Errorf("%s:%d: failed to read scaling parameters", path, k+1)
		}
		k++
		return a, b, nil
	}
	if k < len(lines) && strings.TrimSpace(lines[k]) == "y" {
		k++
		if s.yLower, s.yUpper, err = pair(); err != nil {
			return err
		}
		if s.yMin, s.yMax, err = pair(); err != nil {
			return err
		}
		s.yScaling = true
	}
	if k < len(lines) && strings.TrimSpace(lines[k]) == "x" {
		k++
		if s.lower, s.upper, err = pair(); err != nil {
			return err
		}
		next := 1
		warn := func(i int) {
			if s.fMin[i] != s.fMax[i] {
				fmt.Fprintf(stderr, "WARNING: feature index %d appeared in file %s was not seen in the scaling factor file %s. The feature is scaled to 0.\n", i, data, path)
				s.fMin[i] = 0
				s.fMax[i] = 0
			}
		}
		for ; k < len(lines); k++ {
			f := strings.Fields(lines[k])
			if len(f) != 3 {
				break
			}
			idx, e0 := strconv.Atoi(f[0])
			fmin, e1 := strconv.ParseFloat(f[1], 64)
			fmax, e2 := strconv.ParseFloat(f[2], 64)
			if e0 != nil || e1 != nil || e2 != nil || idx < 0 || idx > s.maxIndex {
				return fmt.Errorf("%s:%d: bad range line %q", path, k+1, lines[k])
			}
			for i := next; i < idx; i++ {
				warn(i)
			}
			s.fMin[idx] = fmin
			s.fMax[idx] = fmax
			next = idx + 1
		}
		for i := next; i <= s.maxIndex; i++ {
			warn(i)
		}
	}
	return nil
}

// save writes the range file.
func (s *scaler) save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if s.yScaling {
		fmt.Fprintf(w, "y\n%s %s\n%s %s\n", g17(s.yLower), g17(s.yUpper), g17(s.yMin), g17(s.yMax))
	}
	fmt.Fprintf(w, "x\n%s %s\n", g17(s.lower), g17(s.upper))
	for i := 1; i <= s.maxIndex; i++ {
		if s.fMin[i] != s.fMax[i] {
			fmt.Fprintf(w, "%d %s %s\n", i, g17(s.fMin[i]), g17(s.fMax[i]))
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *scaler) outputTarget(v float64) {
	if s.yScaling {
		switch v {
		case s.yMin:
			v = s.yLower
		case s.yMax:
			v = s.yUpper
		default:
			v = s.yLower + (s.yUpper-s.yLower)*(v-s.yMin)/(s.yMax-s.yMin)
		}
	}
	s.buf = append(s.buf[:0], g17(v)...)
	s.buf = append(s.buf, ' ')
	s.out.Write(s.buf)
}

func (s *scaler) output(i int, v float64) {
	if s.fMax[i] == s.fMin[i] {
		return // single-valued feature
	}
	switch v {
	case s.fMin[i]:
		v = s.lower
	case s.fMax[i]:
		v = s.upper
	default:
		v = s.lower + (s.upper-s.lower)*(v-s.fMin[i])/(s.fMax[i]-s.fMin[i])
	}
	if v != 0 {
		s.buf = strconv.AppendInt(s.buf[:0], int64(i), 10)
		s.buf = append(s.buf, ':')
		s.buf = append(s.buf, gfmt(v, 6)...)
		s.buf = append(s.buf, ' ')
		s.out.Write(s.buf)
		s.newNZ++
	}
}

// gfmt formats like C's %.<prec>g.
func gfmt(v float64, prec int) string {
	switch {
	case math.IsNaN(v):
		if math.Signbit(v) {
			return "-nan"
		}
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return strconv.FormatFloat(v, 'g', prec, 64)
}

func g17(v float64) string { return gfmt(v, 17) }

// cmin and cmax are C's min and max macros ((x<y)?x:y, (x>y)?x:y).
func cmin(x, y float64) float64 {
	if x < y {
		return x
	}
	return y
}

func cmax(x, y float64) float64 {
	if x > y {
		return x
	}
	return y
}
