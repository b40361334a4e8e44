package svm

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// KernelType selects the kernel function, numbered as in LIBSVM's -t flag.
type KernelType int

// Kernel types (LIBSVM's numbering).
const (
	Linear     KernelType = 0 // u'v
	Polynomial KernelType = 1 // (gamma*u'v + coef0)^degree
	RBF        KernelType = 2 // exp(-gamma*|u-v|^2)
	Sigmoid    KernelType = 3 // tanh(gamma*u'v + coef0)
	// Precomputed kernel values (-t 4): row i of the data is
	// "label 0:i 1:K(x_i,x_1) 2:K(x_i,x_2) ...", a 1-based serial number
	// followed by the kernel values against every training row; a support
	// vector is stored by its serial number only.
	Precomputed KernelType = 4
)

var kernelNames = []string{"linear", "polynomial", "rbf", "sigmoid", "precomputed"}

// String returns LIBSVM's name for the kernel type ("linear", "polynomial", "rbf", "sigmoid", "precomputed").
func (k KernelType) String() string {
	if k >= 0 && int(k) < len(kernelNames) {
		return kernelNames[k]
	}
	return fmt.Sprintf("KernelType(%d)", int(k))
}

// Kernel holds a kernel function and LIBSVM's parameters for it.
type Kernel struct {
	Type   KernelType
	Degree int     // polynomial degree (LIBSVM default 3)
	Gamma  float64 // gamma in poly/rbf/sigmoid
	Coef0  float64 // coef0 in poly/sigmoid
}

// Eval returns K(u, v) for two sparse vectors in increasing index order,
// computed exactly as LIBSVM's Kernel::k_function.
func (k *Kernel) Eval(u, v []Node) float64 {
	switch k.Type {
	case Linear:
		return dotNodes(u, v)
	case Polynomial:
		return powi(k.Gamma*dotNodes(u, v)+k.Coef0, k.Degree)
	case RBF:
		sum := 0.0
		i, j := 0, 0
		for i < len(u) && j < len(v) {
			if u[i].Index == v[j].Index {
				d := u[i].Value - v[j].Value
				sum += d * d
				i++
				j++
			} else if u[i].Index > v[j].Index {
				sum += v[j].Value * v[j].Value
				j++
			} else {
				sum += u[i].Value * u[i].Value
				i++
			}
		}
		for ; i < len(u); i++ {
			sum += u[i].Value * u[i].Value
		}
		for ; j < len(v); j++ {
			sum += v[j].Value * v[j].Value
		}
		return math.Exp(-k.Gamma * sum)
	case Sigmoid:
		return tanhC(k.Gamma*dotNodes(u, v) + k.Coef0)
	case Precomputed:
		return precomputedValue(u, v)
	}
	return math.NaN()
}

// precomputedValue is LIBSVM's precomputed kernel value x[serial(v)]: the
// entry of row u at the position given by v's serial number (NaN when u
// is too short; Train and svm-predict check the rows first).
func precomputedValue(u, v []Node) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	k := int(v[0].Value)
	if k < 0 || k >= len(u) {
		return math.NaN()
	}
	return u[k].Value
}

// checkPrecomputed checks rows of a precomputed-kernel data set: each starts
// with 0:serial (an integer in [1, maxSerial]) and lists the kernel values at
// indices 1, 2, ... without gaps, at least up to need (LIBSVM reads the value
// at a position, so a gap would silently shift every later value).
func checkPrecomputed(x [][]Node, need int) error {
	for i, row := range x {
		if len(row) == 0 || row[0].Index != 0 {
			return fmt.Errorf("svm: row %d: precomputed kernel rows must start with 0:sample_serial_number", i+1)
		}
		if s := row[0].Value; s != math.Trunc(s) || s < 1 {
			return fmt.Errorf("svm: row %d: sample serial number %v is not a positive integer", i+1, s)
		}
		if len(row) <= need {
			return fmt.Errorf("svm: row %d: precomputed kernel row has %d values, needs %d (one per training row)", i+1, len(row)-1, need)
		}
		for k := 1; k <= need; k++ {
			if int(row[k].Index) != k {
				return fmt.Errorf("svm: row %d: precomputed kernel value %d has index %d (rows must list indices 1, 2, ... without gaps)", i+1, k, row[k].Index)
			}
		}
	}
	return nil
}

// maxSerial returns the largest sample serial number (0:serial) of the rows.
func maxSerial(x [][]Node) int {
	m := 0
	for _, row := range x {
		if len(row) > 0 && row[0].Index == 0 && int(row[0].Value) > m {
			m = int(row[0].Value)
		}
	}
	return m
}

func (k *Kernel) validate() error {
	switch k.Type {
	case Linear, RBF, Sigmoid, Precomputed:
	case Polynomial:
		if k.Degree < 0 {
			return fmt.Errorf("svm: degree of polynomial kernel < 0")
		}
	default:
		return fmt.Errorf("svm: unknown kernel type %d", int(k.Type))
	}
	if k.Type != Linear && k.Type != Precomputed && k.Gamma < 0 {
		return fmt.Errorf("svm: gamma < 0")
	}
	return nil
}

func dotNodes(u, v []Node) float64 {
	sum := 0.0
	i, j := 0, 0
	for i < len(u) && j < len(v) {
		if u[i].Index == v[j].Index {
			sum += u[i].Value * v[j].Value
			i++
			j++
		} else if u[i].Index > v[j].Index {
			j++
		} else {
			i++
		}
	}
	return sum
}

// powi is LIBSVM's integer power by repeated squaring.
func powi(base float64, times int) float64 {
	tmp, ret := base, 1.0
	for t := times; t > 0; t /= 2 {
		if t%2 == 1 {
			ret *= tmp
		}
		tmp = tmp * tmp
	}
	return ret
}

// kernelMatrix computes columns of Q_ij = s_i s_j K(x_i, x_j) (s = y for
// LIBSVM's solver, s = 1 for the general solver) in float32 with an LRU cache,
// like LIBSVM's SVC_Q. Rows may be permuted with swap (shrinking).
type kernelMatrix struct {
	k       Kernel
	x       [][]Node
	xsq     []float64
	s       []int8
	qd      []float64
	cache   *lruCache
	dense   [][]float64 // per-worker scatter buffers (len maxIndex+1)
	threads int
	pool    *workerPool
	evals   atomic.Int64 // kernel entries computed
}

func newKernelMatrix(x [][]Node, maxIndex int, s []int8, k Kernel, cacheBytes int64, threads int) *kernelMatrix {
	l := len(x)
	m := &kernelMatrix{k: k, x: append([][]Node(nil), x...), s: append([]int8(nil), s...)}
	if threads < 1 {
		threads = 1
	}
	m.threads = threads
	if k.Type == RBF {
		m.xsq = make([]float64, l)
		for i := range x {
			m.xsq[i] = dotNodes(x[i], x[i])
		}
	}
	if maxIndex < maxDenseIndex && k.Type != Precomputed {
		m.dense = make([][]float64, threads)
		for t := range m.dense {
			m.dense[t] = make([]float64, maxIndex+1)
		}
	}
	if threads > 1 {
		m.pool = newWorkerPool(threads - 1)
	}
	m.qd = make([]float64, l)
	for i := 0; i < l; i++ {
		m.qd[i] = m.kernel(i, i)
	}
	m.cache = newLRUCache(l, cacheBytes)
	return m
}

func (m *kernelMatrix) close() {
	if m.pool != nil {
		m.pool.close()
	}
}

// kernel returns K(x_i, x_j) as LIBSVM's Kernel::kernel_function does.
func (m *kernelMatrix) kernel(i, j int) float64 {
	switch m.k.Type {
	case Linear:
		return dotNodes(m.x[i], m.x[j])
	case Polynomial:
		return powi(m.k.Gamma*dotNodes(m.x[i], m.x[j])+m.k.Coef0, m.k.Degree)
	case RBF:
		return math.Exp(-m.k.Gamma * (m.xsq[i] + m.xsq[j] - 2*dotNodes(m.x[i], m.x[j])))
	case Sigmoid:
		return tanhC(m.k.Gamma*dotNodes(m.x[i], m.x[j]) + m.k.Coef0)
	case Precomputed:
		return m.x[i][int(m.x[j][0].Value)].Value
	}
	return math.NaN()
}

// column returns Q[i][0:n] (float32, owned by the cache; valid until the next
// column or swap call).
func (m *kernelMatrix) column(i, n int) []float32 {
	data, start := m.cache.get(i, n)
	if start < n {
		m.fill(i, data, start, n)
	}
	return data
}

// maxDenseIndex bounds the feature indices for which dot products use a
// dense scatter buffer (8 bytes per index and goroutine); beyond it they
// merge sparse vectors.
var maxDenseIndex = 1 << 22

// parallelMinRows is the shortest column segment split across goroutines.
var parallelMinRows = 1024

// fill computes data[start:end] of column i, in parallel when worthwhile.
func (m *kernelMatrix) fill(i int, data []float32, start, end int) {
	m.evals.Add(int64(end - start))
	if m.pool == nil || end-start < parallelMinRows {
		m.fillRange(0, i, data, start, end)
		return
	}
	n := end - start
	chunk := max(256, n/(8*m.threads))
	m.pool.run(n, chunk, func(t, lo, hi int) {
		m.fillRange(t, i, data, start+lo, start+hi)
	})
}

// fillRange computes column i on rows [lo, hi) with worker t's scatter buffer.
// The dot products add the same products in the same order as LIBSVM's
// merge-based dot (absent indices contribute exact zeros).
func (m *kernelMatrix) fillRange(t, i int, data []float32, lo, hi int) {
	if lo >= hi {
		return
	}
	if m.k.Type == Precomputed {
		si := float64(m.s[i])
		xi := m.x[i]
		for j := lo; j < hi; j++ {
			data[j] = float32(si * float64(m.s[j]) * xi[int(m.x[j][0].Value)].Value)
		}
		return
	}
	if m.dense == nil {
		si := float64(m.s[i])
		for j := lo; j < hi; j++ {
			k := m.kernel(i, j)
			if m.k.Type == RBF { // same values as the dense path
				k = fastExp(-m.k.Gamma * (m.xsq[i] + m.xsq[j] - 2*dotNodes(m.x[i], m.x[j])))
			}
			data[j] = float32(si * float64(m.s[j]) * k)
		}
		return
	}
	dense := m.dense[t]
	xi := m.x[i]
	for _, n := range xi {
		dense[n.Index] = n.Value
	}
	data = data[:hi]
	xs := m.x[:hi]
	si := float64(m.s[i])
	s := m.s[:hi]
	switch m.k.Type {
	case Linear:
		for j := lo; j < hi; j++ {
			data[j] = float32(si * float64(s[j]) * sparseDense(xs[j], dense))
		}
	case Polynomial:
		g, c0, deg := m.k.Gamma, m.k.Coef0, m.k.Degree
		for j := lo; j < hi; j++ {
			data[j] = float32(si * float64(s[j]) * powi(g*sparseDense(xs[j], dense)+c0, deg))
		}
	case RBF:
		g := m.k.Gamma
		xsq := m.xsq[:hi]
		xsqi := m.xsq[i]
		j := lo
		// Two rows at a time: two independent floating-point add chains
		// (each summed in LIBSVM's order) keep the CPU busy.
		for ; j+1 < hi; j += 2 {
			d0, d1 := sparseDense2(xs[j], xs[j+1], dense)
			data[j] = float32(si * float64(s[j]) * fastExp(-g*(xsqi+xsq[j]-2*d0)))
			data[j+1] = float32(si * float64(s[j+1]) * fastExp(-g*(xsqi+xsq[j+1]-2*d1)))
		}
		for ; j < hi; j++ {
			data[j] = float32(si * float64(s[j]) * fastExp(-g*(xsqi+xsq[j]-2*sparseDense(xs[j], dense))))
		}
	case Sigmoid:
		g, c0 := m.k.Gamma, m.k.Coef0
		for j := lo; j < hi; j++ {
			data[j] = float32(si * float64(s[j]) * tanhC(g*sparseDense(xs[j], dense)+c0))
		}
	}
	for _, n := range xi {
		dense[n.Index] = 0
	}
}

// sparseDense2 returns sparseDense(a, dense) and sparseDense(b, dense),
// interleaving the two sums.
func sparseDense2(a, b []Node, dense []float64) (float64, float64) {
	s0, s1 := 0.0, 0.0
	n := min(len(a), len(b))
	a2, b2 := a[:n], b[:n]
	for k := range a2 {
		s0 += dense[a2[k].Index] * a2[k].Value
		s1 += dense[b2[k].Index] * b2[k].Value
	}
	for _, e := range a[n:] {
		s0 += dense[e.Index] * e.Value
	}
	for _, e := range b[n:] {
		s1 += dense[e.Index] * e.Value
	}
	return s0, s1
}

func sparseDense(x []Node, dense []float64) float64 {
	sum := 0.0
	for _, n := range x {
		sum += dense[n.Index] * n.Value
	}
	return sum
}

// swap exchanges rows/columns i and j (LIBSVM's SVC_Q::swap_index).
func (m *kernelMatrix) swap(i, j int) {
	m.cache.swap(i, j)
	m.x[i], m.x[j] = m.x[j], m.x[i]
	if m.xsq != nil {
		m.xsq[i], m.xsq[j] = m.xsq[j], m.xsq[i]
	}
	m.s[i], m.s[j] = m.s[j], m.s[i]
	m.qd[i], m.qd[j] = m.qd[j], m.qd[i]
}

// workerPool splits a range of rows into chunks that the calling goroutine
// and the workers claim with an atomic counter. The caller never waits for a
// worker that has not started (it takes the remaining chunks itself), so a
// descheduled worker on a busy machine costs at most one chunk. Idle workers
// spin briefly, then park.
type workerPool struct {
	workers  int
	cur      atomic.Pointer[poolJob]
	gen      atomic.Uint64
	sleeping atomic.Int32
	closed   atomic.Bool
	mu       sync.Mutex
	cond     *sync.Cond
}

type poolJob struct {
	f     func(t, lo, hi int)
	n     int
	chunk int
	next  atomic.Int64
	done  atomic.Int64
	fin   chan struct{} // closed when all n rows are done
}

// spinWait is how long an idle worker spins before parking.
const spinWait = 50 * time.Microsecond

func newWorkerPool(workers int) *workerPool {
	p := &workerPool{workers: workers}
	p.cond = sync.NewCond(&p.mu)
	for w := 1; w <= workers; w++ {
		go p.loop(w)
	}
	return p
}

func (p *workerPool) loop(t int) {
	last := uint64(0) // the generation at creation; run has not been called yet
	for {
		var t0 time.Time
		for spun := 1; p.gen.Load() == last; spun++ {
			if p.closed.Load() {
				return
			}
			if spun&255 == 0 {
				if t0.IsZero() {
					t0 = time.Now()
				} else if time.Since(t0) > spinWait {
					p.sleeping.Add(1)
					p.mu.Lock()
					for p.gen.Load() == last && !p.closed.Load() {
						p.cond.Wait()
					}
					p.mu.Unlock()
					p.sleeping.Add(-1)
				}
				runtime.Gosched()
			}
		}
		last = p.gen.Load()
		if j := p.cur.Load(); j != nil {
			j.do(t)
		}
	}
}

func (j *poolJob) do(t int) {
	for {
		lo := int(j.next.Add(1)-1) * j.chunk
		if lo >= j.n {
			return
		}
		hi := min(lo+j.chunk, j.n)
		j.f(t, lo, hi)
		if j.done.Add(int64(hi-lo)) == int64(j.n) {
			close(j.fin)
		}
	}
}

// run calls f(t, lo, hi) over chunks covering [0, n), on the caller (t = 0)
// and the workers (t = 1..workers), and returns when all are done. It must
// not be called concurrently.
func (p *workerPool) run(n, chunk int, f func(t, lo, hi int)) {
	j := &poolJob{f: f, n: n, chunk: max(chunk, 1), fin: make(chan struct{})}
	p.cur.Store(j)
	p.gen.Add(1)
	if p.sleeping.Load() > 0 {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	j.do(0)
	// A worker still finishing its chunk is usually done within
	// microseconds; if not (it was descheduled), block instead of spinning.
	for spun := 0; spun < 2000; spun++ {
		if j.done.Load() == int64(n) {
			return
		}
	}
	<-j.fin
}

func (p *workerPool) close() {
	p.closed.Store(true)
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}
