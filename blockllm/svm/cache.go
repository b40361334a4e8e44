package svm

// lruCache is LIBSVM's kernel-column cache: column i holds its first len
// entries (float32); least recently used columns are evicted when the size
// limit is reached. The size counts allocated float32 slots plus a fixed
// per-column overhead, as in LIBSVM.
type lruCache struct {
	l     int
	size  int64 // free space, in float32 units
	heads []cacheHead
	// sentinel is heads[l]
}

type cacheHead struct {
	prev, next int32
	data       []float32
	inList     bool
}

func newLRUCache(l int, bytes int64) *lruCache {
	c := &lruCache{l: l, heads: make([]cacheHead, l+1)}
	size := bytes / 4
	size -= int64(l) * 32 / 4 // per-column head overhead (sizeof(head_t) = 32 in LIBSVM)
	if size < 2*int64(l) {
		size = 2 * int64(l)
	}
	c.size = size
	s := int32(l)
	c.heads[l].next = s
	c.heads[l].prev = s
	return c
}

func (c *lruCache) del(h int32) {
	hd := &c.heads[h]
	c.heads[hd.prev].next = hd.next
	c.heads[hd.next].prev = hd.prev
	hd.inList = false
}

func (c *lruCache) insert(h int32) {
	s := int32(c.l)
	hd := &c.heads[h]
	hd.next = s
	hd.prev = c.heads[s].prev
	c.heads[hd.prev].next = h
	c.heads[s].prev = h
	hd.inList = true
}

// get returns column index's buffer of length n and the position from which
// entries must be (re)computed.
func (c *lruCache) get(index, n int) ([]float32, int) {
	h := int32(index)
	hd := &c.heads[h]
	have := len(hd.data)
	if hd.inList {
		c.del(h)
	}
	if more := n - have; more > 0 {
		need := int64(n - cap(hd.data))
		if need < 0 {
			need = 0
		}
		var reuse []float32
		for c.size < need {
			old := c.heads[c.l].next
			if old == int32(c.l) {
				break
			}
			c.del(old)
			od := c.heads[old].data
			c.size += int64(cap(od))
			c.heads[old].data = nil
			if reuse == nil && cap(od) >= n {
				reuse = od
			}
		}
		if cap(hd.data) >= n {
			hd.data = hd.data[:n]
		} else {
			var nd []float32
			if reuse != nil {
				nd = reuse[:n]
				c.size -= int64(cap(reuse))
			} else {
				nd = make([]float32, n)
				c.size -= int64(n)
			}
			copy(nd, hd.data[:have])
			c.size += int64(cap(hd.data))
			hd.data = nd
		}
	} else {
		have = n
		hd.data = hd.data[:max(len(hd.data), n)]
	}
	c.insert(h)
	return hd.data, have
}

// swap exchanges entries i and j in every cached column and the columns
// themselves (LIBSVM's Cache::swap_index).
func (c *lruCache) swap(i, j int) {
	if i == j {
		return
	}
	hi, hj := int32(i), int32(j)
	if c.heads[hi].inList {
		c.del(hi)
	}
	if c.heads[hj].inList {
		c.del(hj)
	}
	c.heads[hi].data, c.heads[hj].data = c.heads[hj].data, c.heads[hi].data
	if len(c.heads[hi].data) > 0 {
		c.insert(hi)
	}
	if len(c.heads[hj].data) > 0 {
		c.insert(hj)
	}
	if i > j {
		i, j = j, i
	}
	s := int32(c.l)
	for h := c.heads[s].next; h != s; {
		next := c.heads[h].next
		d := c.heads[h].data
		if len(d) > i {
			if len(d) > j {
				d[i], d[j] = d[j], d[i]
			} else {
				// give up
				c.del(h)
				c.size += int64(cap(d))
				c.heads[h].data = nil
			}
		}
		h = next
	}
}
