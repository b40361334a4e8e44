package svm

import "math"

// GS1Direction returns the 1-norm steepest-descent direction under the
// summation constraint and bounds: the d minimising g.d + (L/2)||d||_1^2
// subject to sum(d) = 0 and lower - x <= d <= upper - x, as its non-zero
// entries (idx[k], d[k]). It walks the coordinates that can decrease by g
// descending and those that can increase by g ascending, moving mass from
// the current largest to the current smallest (each moved coordinate to its
// bound) until the marginal gain g_i - g_j falls to 4L times the mass moved;
// at most one coordinate on each side moves partially. Nil bounds mean
// unbounded. It costs O(n + k log n) for k moved coordinates.
func GS1Direction(g, x, lower, upper []float64, L float64) (idx []int, d []float64) {
	n := len(g)
	if lower == nil {
		lower = fill(n, math.Inf(-1))
	}
	if upper == nil {
		upper = fill(n, math.Inf(1))
	}
	sv := &solverState{n: n, g: g, x: x, lower: lower, upper: upper, L: L}
	sv.gs1Direction()
	return append([]int(nil), sv.dIdx...), append([]float64(nil), sv.dVal...)
}

// gs1Direction fills sv.dIdx, sv.dVal and sv.dHit.
func (sv *solverState) gs1Direction() {
	sv.dIdx, sv.dVal, sv.dHit = sv.dIdx[:0], sv.dVal[:0], sv.dHit[:0]
	g, x := sv.g, sv.x
	// Only coordinates that could take part: down needs g > min_up g,
	// up needs g < max_down g.
	gmaxD, gminU := math.Inf(-1), math.Inf(1)
	for k, gk := range g {
		if x[k] > sv.lower[k] && gk > gmaxD {
			gmaxD = gk
		}
		if x[k] < sv.upper[k] && gk < gminU {
			gminU = gk
		}
	}
	if !(gmaxD > gminU) {
		return
	}
	sv.hd.reset(g, -1)
	sv.hu.reset(g, 1)
	for k, gk := range g {
		if x[k] > sv.lower[k] && gk > gminU {
			sv.hd.data = append(sv.hd.data, int32(k))
		}
		if x[k] < sv.upper[k] && gk < gmaxD {
			sv.hu.data = append(sv.hu.data, int32(k))
		}
	}
	sv.hd.init()
	sv.hu.init()
	L4 := 4 * sv.L
	m := 0.0
	i, j := sv.hd.pop(), sv.hu.pop()
	capI := x[i] - sv.lower[i]
	capJ := sv.upper[j] - x[j]
	movedI, movedJ := 0.0, 0.0
	flush := func(k int, v float64, hit bool) {
		if v != 0 {
			sv.dIdx = append(sv.dIdx, k)
			sv.dVal = append(sv.dVal, v)
			sv.dHit = append(sv.dHit, hit)
		}
	}
	for {
		gain := g[i] - g[j]
		if i == j || gain <= L4*m {
			break
		}
		room := (gain - L4*m) / L4
		t := math.Min(room, math.Min(capI-movedI, capJ-movedJ))
		movedI += t
		movedJ += t
		m += t
		if t == room {
			break
		}
		if movedI >= capI {
			flush(i, -capI, true)
			movedI = 0
			if i = sv.hd.pop(); i < 0 {
				break
			}
			capI = x[i] - sv.lower[i]
		}
		if movedJ >= capJ {
			flush(j, capJ, true)
			movedJ = 0
			if j = sv.hu.pop(); j < 0 {
				break
			}
			capJ = sv.upper[j] - x[j]
		}
	}
	if i >= 0 {
		flush(i, -movedI, false)
	}
	if j >= 0 {
		flush(j, movedJ, false)
	}
}

// idxHeap yields coordinate indices in increasing order of sign*g. The
// first few pops scan the candidates linearly (a GS-1 walk usually stops
// after one or two); the rest come from a binary heap built on the first
// pop beyond those, so k pops cost O(n + k log n) either way.
type idxHeap struct {
	data   []int32
	g      []float64
	sign   float64
	scans  int  // pops answered by a linear scan so far
	heaped bool // data is a heap
}

// linearPops is how many pops scan before the heap is built.
const linearPops = 4

func (h *idxHeap) reset(g []float64, sign float64) {
	h.data = h.data[:0]
	h.g = g
	h.sign = sign
	h.scans = 0
	h.heaped = false
}

func (h *idxHeap) less(a, b int32) bool { return h.sign*h.g[a] < h.sign*h.g[b] }

// init marks the candidates as complete (the heap is built lazily).
func (h *idxHeap) init() {
	h.scans = 0
	h.heaped = false
}

func (h *idxHeap) heapify() {
	for k := len(h.data)/2 - 1; k >= 0; k-- {
		h.down(k)
	}
	h.heaped = true
}

func (h *idxHeap) down(k int) {
	d := h.data
	n := len(d)
	for {
		c := 2*k + 1
		if c >= n {
			return
		}
		if c+1 < n && h.less(d[c+1], d[c]) {
			c++
		}
		if !h.less(d[c], d[k]) {
			return
		}
		d[c], d[k] = d[k], d[c]
		k = c
	}
}

// pop removes and returns the index of smallest sign*g, or -1 when empty.
func (h *idxHeap) pop() int {
	n := len(h.data)
	if n == 0 {
		return -1
	}
	if !h.heaped && h.scans < linearPops {
		h.scans++
		best := 0
		for k := 1; k < n; k++ {
			if h.less(h.data[k], h.data[best]) {
				best = k
			}
		}
		top := h.data[best]
		h.data[best] = h.data[n-1]
		h.data = h.data[:n-1]
		return int(top)
	}
	if !h.heaped {
		h.heapify()
	}
	top := h.data[0]
	h.data[0] = h.data[n-1]
	h.data = h.data[:n-1]
	if n > 1 {
		h.down(0)
	}
	return int(top)
}
