package svm

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Model is a trained model in LIBSVM's layout. For classification SV holds
// the support vectors grouped by class (NSV[c] of class Label[c], in class
// order), SVCoef[k][i] is the coefficient (y*alpha) of SV i in the (k-th
// other class) binary problem, Rho[p] the bias of the p-th one-vs-one
// classifier (pairs (0,1), (0,2), ..., (1,2), ...), and ProbA/ProbB the
// Platt parameters when probabilities were trained. One-class SVM and
// regression have NrClass 2, no Label or NSV, one Rho and one row of
// SVCoef; a regression model trained with probabilities has ProbA = [sigma]
// (the Laplace scale of its residuals) and no ProbB.
type Model struct {
	Type      SVMType
	Kernel    Kernel
	NrClass   int
	Label     []int
	Rho       []float64
	ProbA     []float64
	ProbB     []float64
	NSV       []int
	SV        [][]Node
	SVCoef    [][]float64
	SVIndices []int // 1-based row numbers of the SVs in the training set (0 when read from a file)
	// Stats holds per-binary-problem training figures (empty for a model read from a file).
	Stats []BinaryStats

	prep     sync.Once
	svsq     []float64 // squared norms of the SVs (RBF)
	maxIndex int       // largest feature index among the SVs
	useDense bool      // dense scatter for dot products (indices not too large)
}

// prepare computes the SV norms and index range used by prediction. A model
// must not be modified after its first prediction.
func (m *Model) prepare() {
	m.prep.Do(func() {
		m.svsq = make([]float64, len(m.SV))
		for i, sv := range m.SV {
			m.svsq[i] = dotNodes(sv, sv)
			if n := len(sv); n > 0 && int(sv[n-1].Index) > m.maxIndex {
				m.maxIndex = int(sv[n-1].Index)
			}
		}
		// Regression values are printed to 17 digits: RBF there uses
		// LIBSVM's own distance sum (k_function) so that they are LIBSVM's.
		m.useDense = m.maxIndex < maxDenseIndex && m.Kernel.Type != Precomputed &&
			!(m.Kernel.Type == RBF && !m.Type.Classification())
	})
}

// kernelValues writes K(x, SV_i) into kv using a dense scatter of x (dense
// has length maxIndex+1 and is left zeroed). Dot products add the same
// products in the same order as LIBSVM; the RBF distance is computed as
// |x|^2 + |sv|^2 - 2 x.sv, as in LIBSVM's training kernel.
func (m *Model) kernelValues(x []Node, kv, dense []float64) {
	if !m.useDense {
		for i, sv := range m.SV {
			kv[i] = m.Kernel.Eval(x, sv)
		}
		return
	}

	xsq := 0.0
	for _, n := range x {
		if int(n.Index) <= m.maxIndex {
			dense[n.Index] = n.Value
		}
		xsq += n.Value * n.Value
	}
	k := &m.Kernel
	for i, sv := range m.SV {
		dot := sparseDense(sv, dense)
		switch k.Type {
		case Linear:
			kv[i] = dot
		case Polynomial:
			kv[i] = powi(k.Gamma*dot+k.Coef0, k.Degree)
		case RBF:
			kv[i] = math.Exp(-k.Gamma * (xsq + m.svsq[i] - 2*dot))
		case Sigmoid:
			kv[i] = tanhC(k.Gamma*dot + k.Coef0)
		default:
			kv[i] = math.NaN()
		}
	}
	for _, n := range x {
		if int(n.Index) <= m.maxIndex {
			dense[n.Index] = 0
		}
	}
}

// TotalSV returns the number of support vectors.
func (m *Model) TotalSV() int { return len(m.SV) }

// HasProbability reports whether the model carries probability
// information: Platt parameters for classification, sigma for regression.
func (m *Model) HasProbability() bool {
	switch {
	case m.Type.Classification():
		return m.ProbA != nil && m.ProbB != nil
	case m.Type.Regression():
		return len(m.ProbA) > 0
	}
	return false
}

// SVRProbability returns the sigma of a regression model trained with
// probabilities: the target is modelled as the prediction plus Laplace noise
// with density e^(-|z|/sigma)/(2 sigma). ok is false for other models.
func (m *Model) SVRProbability() (sigma float64, ok bool) {
	if m.Type.Regression() && len(m.ProbA) > 0 {
		return m.ProbA[0], true
	}
	return 0, false
}

// CheckRows reports the first row the model cannot predict: with a
// precomputed kernel, a row must start with 0:serial and list its kernel
// values against the training rows without gaps up to the largest serial
// number of the support vectors.
func (m *Model) CheckRows(x [][]Node) error {
	if m.Kernel.Type != Precomputed {
		return nil
	}
	return checkPrecomputed(x, maxSerial(m.SV))
}

// DecisionValues writes the NrClass*(NrClass-1)/2 one-vs-one decision values
// of x into dec (allocated when nil or short) and returns the predicted label
// by voting, as LIBSVM's svm_predict_values. kbuf is optional scratch of
// length TotalSV.
func (m *Model) DecisionValues(x []Node, dec []float64) (float64, []float64) {
	return m.decisionValues(x, dec, nil, nil)
}

func (m *Model) decisionValues(x []Node, dec, kv, dense []float64) (float64, []float64) {
	if !m.Type.Classification() {
		return m.singleValue(x, dec, kv, dense)
	}
	nr := m.NrClass
	np := nr * (nr - 1) / 2
	if len(dec) < np {
		dec = make([]float64, np)
	}
	dec = dec[:np]
	if nr < 2 {
		if nr == 1 {
			return float64(m.Label[0]), dec
		}
		return math.NaN(), dec
	}
	l := len(m.SV)
	m.prepare()
	if len(kv) < l {
		kv = make([]float64, l)
	}
	if m.useDense && len(dense) < m.maxIndex+1 {
		dense = make([]float64, m.maxIndex+1)
	}
	m.kernelValues(x, kv, dense)
	start := make([]int, nr)
	for i := 1; i < nr; i++ {
		start[i] = start[i-1] + m.NSV[i-1]
	}
	vote := make([]int, nr)
	p := 0
	for i := 0; i < nr; i++ {
		for j := i + 1; j < nr; j++ {
			sum := 0.0
			si, sj := start[i], start[j]
			ci, cj := m.NSV[i], m.NSV[j]
			coef1 := m.SVCoef[j-1]
			coef2 := m.SVCoef[i]
			for k := 0; k < ci; k++ {
				sum += coef1[si+k] * kv[si+k]
			}
			for k := 0; k < cj; k++ {
				sum += coef2[sj+k] * kv[sj+k]
			}
			sum -= m.Rho[p]
			dec[p] = sum
			if sum > 0 {
				vote[i]++
			} else {
				vote[j]++
			}
			p++
		}
	}
	best := 0
	for i := 1; i < nr; i++ {
		if vote[i] > vote[best] {
			best = i
		}
	}
	return float64(m.Label[best]), dec
}

// singleValue is svm_predict_values for one-class SVM and regression: the
// decision value sum_i coef_i K(x, SV_i) - rho, returned as it is
// (regression) or as +1/-1 (one-class).
func (m *Model) singleValue(x []Node, dec, kv, dense []float64) (float64, []float64) {
	if len(dec) < 1 {
		dec = make([]float64, 1)
	}
	dec = dec[:1]
	m.prepare()
	l := len(m.SV)
	if len(kv) < l {
		kv = make([]float64, l)
	}
	if m.useDense && len(dense) < m.maxIndex+1 {
		dense = make([]float64, m.maxIndex+1)
	}
	m.kernelValues(x, kv, dense)
	sum := 0.0
	var coef []float64
	if len(m.SVCoef) > 0 {
		coef = m.SVCoef[0]
	}
	for i := 0; i < l; i++ {
		sum += coef[i] * kv[i]
	}
	if len(m.Rho) > 0 {
		sum -= m.Rho[0]
	}
	dec[0] = sum
	if m.Type == OneClass {
		if sum > 0 {
			return 1, dec
		}
		return -1, dec
	}
	return sum, dec
}

// Predict returns the predicted label (classification, one-class: +1 or
// -1) or value (regression) of x.
func (m *Model) Predict(x []Node) float64 {
	lab, _ := m.DecisionValues(x, nil)
	return lab
}

// PredictProbability returns the predicted label and per-class probabilities
// (in Label order) by LIBSVM's pairwise coupling; for other models, or
// without probability parameters, it returns Predict(x) and nil.
func (m *Model) PredictProbability(x []Node) (float64, []float64) {
	if !m.Type.Classification() || !m.HasProbability() {
		return m.Predict(x), nil
	}
	nr := m.NrClass
	_, dec := m.DecisionValues(x, nil)
	const minProb = 1e-7
	r := make([][]float64, nr)
	for i := range r {
		r[i] = make([]float64, nr)
	}
	k := 0
	for i := 0; i < nr; i++ {
		for j := i + 1; j < nr; j++ {
			r[i][j] = math.Min(math.Max(sigmoidPredict(dec[k], m.ProbA[k], m.ProbB[k]), minProb), 1-minProb)
			r[j][i] = 1 - r[i][j]
			k++
		}
	}
	pe := make([]float64, nr)
	if nr == 2 {
		pe[0], pe[1] = r[0][1], r[1][0]
	} else {
		multiclassProbability(nr, r, pe)
	}
	best := 0
	for i := 1; i < nr; i++ {
		if pe[i] > pe[best] {
			best = i
		}
	}
	return float64(m.Label[best]), pe
}

// PredictAll predicts every row of xs on up to threads goroutines and returns
// the labels (and, when prob is true and the model has probabilities, the
// per-class probabilities of each row).
func (m *Model) PredictAll(xs [][]Node, threads int, prob bool) ([]float64, [][]float64) {
	out := make([]float64, len(xs))
	var probs [][]float64
	prob = prob && m.HasProbability()
	if prob {
		probs = make([][]float64, len(xs))
	}
	if threads < 1 {
		threads = 1
	}
	var wg sync.WaitGroup
	chunk := (len(xs) + threads - 1) / threads
	for t := 0; t < threads; t++ {
		lo, hi := t*chunk, min((t+1)*chunk, len(xs))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.prepare()
			kv := make([]float64, len(m.SV))
			var dense []float64
			if m.useDense {
				dense = make([]float64, m.maxIndex+1)
			}
			var dec []float64
			for i := lo; i < hi; i++ {
				if prob {
					out[i], probs[i] = m.PredictProbability(xs[i])
				} else {
					out[i], dec = m.decisionValues(xs[i], dec, kv, dense)
				}
			}
		}()
	}
	wg.Wait()
	return out, probs
}

// fmtG formats like C's printf("%.17g").
func fmtG(v float64) string {
	return cfmtG(v, 17)
}

// cfmtG formats v like C's %.<prec>g.
func cfmtG(v float64, prec int) string {
	if math.IsNaN(v) {
		return "nan"
	}
	if math.IsInf(v, 1) {
		return "inf"
	}
	if math.IsInf(v, -1) {
		return "-inf"
	}
	s := strconv.FormatFloat(v, 'g', prec, 64)
	// Go prints "1e+06"/"1e-05" exactly like C; nothing else to fix.
	return s
}

// Save writes the model to path in LIBSVM's model format.
func (m *Model) Save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("svm: %w", err)
	}
	if err := m.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("svm: %w", err)
	}
	return nil
}

// Write writes the model in LIBSVM's model format (svm_save_model).
func (m *Model) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "svm_type %s\n", m.Type)
	fmt.Fprintf(bw, "kernel_type %s\n", m.Kernel.Type)
	if m.Kernel.Type == Polynomial {
		fmt.Fprintf(bw, "degree %d\n", m.Kernel.Degree)
	}
	if m.Kernel.Type == Polynomial || m.Kernel.Type == RBF || m.Kernel.Type == Sigmoid {
		fmt.Fprintf(bw, "gamma %s\n", fmtG(m.Kernel.Gamma))
	}
	if m.Kernel.Type == Polynomial || m.Kernel.Type == Sigmoid {
		fmt.Fprintf(bw, "coef0 %s\n", fmtG(m.Kernel.Coef0))
	}
	fmt.Fprintf(bw, "nr_class %d\n", m.NrClass)
	fmt.Fprintf(bw, "total_sv %d\n", len(m.SV))
	np := m.NrClass * (m.NrClass - 1) / 2
	writeList := func(name string, v []float64) {
		bw.WriteString(name)
		for _, x := range v[:min(np, len(v))] {
			bw.WriteString(" ")
			bw.WriteString(fmtG(x))
		}
		bw.WriteString("\n")
	}
	writeList("rho", m.Rho)
	if m.Label != nil {
		bw.WriteString("label")
		for _, x := range m.Label {
			fmt.Fprintf(bw, " %d", x)
		}
		bw.WriteString("\n")
	}
	if m.ProbA != nil {
		writeList("probA", m.ProbA)
	}
	if m.ProbB != nil {
		writeList("probB", m.ProbB)
	}
	if m.NSV != nil {
		bw.WriteString("nr_sv")
		for _, x := range m.NSV {
			fmt.Fprintf(bw, " %d", x)
		}
		bw.WriteString("\n")
	}
	bw.WriteString("SV\n")
	var buf []byte
	for i, sv := range m.SV {
		buf = buf[:0]
		for j := 0; j < m.NrClass-1; j++ {
			buf = append(buf, fmtG(m.SVCoef[j][i])...)
			buf = append(buf, ' ')
		}
		if m.Kernel.Type == Precomputed {
			buf = append(buf, "0:"...)
			if len(sv) > 0 {
				buf = strconv.AppendInt(buf, int64(int32(sv[0].Value)), 10)
			}
			buf = append(buf, ' ')
		} else {
			for _, n := range sv {
				buf = strconv.AppendInt(buf, int64(n.Index), 10)
				buf = append(buf, ':')
				buf = append(buf, cfmtG(n.Value, 8)...)
				buf = append(buf, ' ')
			}
		}
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("svm: %w", err)
	}
	return nil
}

// ReadModelFile reads a LIBSVM model file (any svm_type).
func ReadModelFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("svm: %w", err)
	}
	defer f.Close()
	return readModel(f, path)
}

// ReadModel reads a model in LIBSVM's format (any svm_type).
func ReadModel(r io.Reader) (*Model, error) { return readModel(r, "model") }

func readModel(r io.Reader, name string) (*Model, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	m := &Model{Kernel: Kernel{Degree: 3}}
	lineNo := 0
	errf := func(format string, args ...any) error {
		return fmt.Errorf("svm: %s:%d: %s", name, lineNo, fmt.Sprintf(format, args...))
	}
	totalSV := -1
	floats := func(f []string, n int) ([]float64, error) {
		if len(f)-1 != n {
			return nil, errf("%s wants %d values, got %d", f[0], n, len(f)-1)
		}
		out := make([]float64, n)
		for i := range out {
			v, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil {
				return nil, errf("bad %s value %q", f[0], f[i+1])
			}
			out[i] = v
		}
		return out, nil
	}
	ints := func(f []string, n int) ([]int, error) {
		if len(f)-1 != n {
			return nil, errf("%s wants %d values, got %d", f[0], n, len(f)-1)
		}
		out := make([]int, n)
		for i := range out {
			v, err := strconv.Atoi(f[i+1])
			if err != nil {
				return nil, errf("bad %s value %q", f[0], f[i+1])
			}
			out[i] = v
		}
		return out, nil
	}
	header := true
	for header {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("svm: %s: %w", name, err)
			}
			return nil, fmt.Errorf("svm: %s: missing SV section", name)
		}
		lineNo++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		np := m.NrClass * (m.NrClass - 1) / 2
		needClass := func() error {
			if m.NrClass < 1 {
				return errf("%s before nr_class", f[0])
			}
			return nil
		}
		switch f[0] {
		case "svm_type":
			found := false
			for i, n := range svmTypeNames {
				if len(f) == 2 && n == f[1] {
					m.Type = SVMType(i)
					found = true
				}
			}
			if !found {
				return nil, errf("unknown svm_type %q", strings.Join(f[1:], " "))
			}
		case "kernel_type":
			if len(f) != 2 {
				return nil, errf("bad kernel_type line")
			}
			found := false
			for i, n := range kernelNames {
				if n == f[1] {
					m.Kernel.Type = KernelType(i)
					found = true
				}
			}
			if !found {
				return nil, errf("unknown kernel type %q", f[1])
			}
		case "degree":
			var v []int
			if v, err = ints(f, 1); err == nil {
				m.Kernel.Degree = v[0]
			}
		case "gamma":
			var v []float64
			if v, err = floats(f, 1); err == nil {
				m.Kernel.Gamma = v[0]
			}
		case "coef0":
			var v []float64
			if v, err = floats(f, 1); err == nil {
				m.Kernel.Coef0 = v[0]
			}
		case "nr_class":
			var v []int
			if v, err = ints(f, 1); err == nil {
				if v[0] < 1 || v[0] > 1<<16 {
					return nil, errf("bad nr_class %d", v[0])
				}
				m.NrClass = v[0]
			}
		case "total_sv":
			var v []int
			if v, err = ints(f, 1); err == nil {
				if v[0] < 0 {
					return nil, errf("bad total_sv %d", v[0])
				}
				totalSV = v[0]
			}
		case "rho":
			if err = needClass(); err == nil {
				m.Rho, err = floats(f, np)
			}
		case "label":
			if err = needClass(); err == nil {
				m.Label, err = ints(f, m.NrClass)
			}
		case "probA":
			if err = needClass(); err == nil {
				m.ProbA, err = floats(f, np)
			}
		case "probB":
			if err = needClass(); err == nil {
				m.ProbB, err = floats(f, np)
			}
		case "nr_sv":
			if err = needClass(); err == nil {
				m.NSV, err = ints(f, m.NrClass)
			}
		case "SV":
			header = false
		default:
			return nil, errf("unknown text in model file: %q", f[0])
		}
		if err != nil {
			return nil, err
		}
	}
	if m.NrClass < 1 || totalSV < 0 || m.Rho == nil {
		return nil, errf("model header misses nr_class, total_sv or rho")
	}
	if m.Type.Classification() {
		if m.Label == nil || m.NSV == nil {
			return nil, errf("%s model header misses label or nr_sv", m.Type)
		}
		sum := 0
		for _, n := range m.NSV {
			if n < 0 {
				return nil, errf("negative nr_sv")
			}
			sum += n
		}
		if sum != totalSV {
			return nil, errf("nr_sv sums to %d, total_sv is %d", sum, totalSV)
		}
	} else if m.NrClass != 2 {
		return nil, errf("%s model needs nr_class 2, got %d", m.Type, m.NrClass)
	}
	nc := m.NrClass - 1
	// Grow with the file rather than trusting total_sv for allocation sizes.
	m.SVCoef = make([][]float64, nc)
	for i := range m.SVCoef {
		m.SVCoef[i] = make([]float64, 0, min(totalSV, 1<<16))
	}
	m.SV = make([][]Node, 0, min(totalSV, 1<<16))
	for len(m.SV) < totalSV {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("svm: %s: %w", name, err)
			}
			return nil, fmt.Errorf("svm: %s: %d support vectors, total_sv says %d", name, len(m.SV), totalSV)
		}
		lineNo++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < nc {
			return nil, errf("support vector line has %d fields, wants at least %d coefficients", len(f), nc)
		}
		for k := 0; k < nc; k++ {
			v, err := strconv.ParseFloat(f[k], 64)
			if err != nil {
				return nil, errf("bad coefficient %q", f[k])
			}
			m.SVCoef[k] = append(m.SVCoef[k], v)
		}
		sv := make([]Node, 0, len(f)-nc)
		prev := -1
		for _, tok := range f[nc:] {
			c := strings.IndexByte(tok, ':')
			if c <= 0 {
				return nil, errf("bad feature %q", tok)
			}
			idx, err := strconv.ParseInt(tok[:c], 10, 32)
			if err != nil || idx < 0 || int(idx) <= prev {
				return nil, errf("bad feature index %q", tok[:c])
			}
			v, err := strconv.ParseFloat(tok[c+1:], 64)
			if err != nil {
				return nil, errf("bad feature value %q", tok[c+1:])
			}
			prev = int(idx)
			sv = append(sv, Node{Index: int32(idx), Value: v})
		}
		m.SV = append(m.SV, sv)
	}
	m.SVIndices = make([]int, totalSV)
	return m, nil
}
