package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// mtoken is one token produced by a model for a word: its id and the byte
// range [start, end) within the word.
type mtoken struct {
	id         int32
	start, end int32
	raw        bool // the token's string is the matched text, not the vocab entry (Unigram unknowns)
}

// model turns one pre-tokenized word into tokens.
type model interface {
	// tokenize appends the tokens of word to dst.
	tokenize(dst []mtoken, word string) ([]mtoken, error)
	tokenToID(tok string) (int, bool)
	idToToken(id int) (string, bool)
	// size is the largest id plus one.
	size() int
	// entries is HF's get_vocab_size: the number of vocabulary entries.
	entries() int
}

// vocabulary is a token<->id table shared by the models.
type vocabulary struct {
	ids    map[string]int32
	tokens []string // by id; "" with present[id]==false for holes
	has    []bool
}

func newVocabulary(m map[string]int) (vocabulary, error) {
	v := vocabulary{ids: make(map[string]int32, len(m))}
	maxID := -1
	for tok, id := range m {
		if id < 0 || id > 1<<30 {
			return v, fmt.Errorf("vocab entry %q has invalid id %d", tok, id)
		}
		v.ids[tok] = int32(id)
		if id > maxID {
			maxID = id
		}
	}
	v.tokens = make([]string, maxID+1)
	v.has = make([]bool, maxID+1)
	for tok, id := range m {
		v.tokens[id] = tok
		v.has[id] = true
	}
	return v, nil
}

func (v *vocabulary) tokenToID(tok string) (int, bool) {
	id, ok := v.ids[tok]
	return int(id), ok
}

func (v *vocabulary) idToToken(id int) (string, bool) {
	if id < 0 || id >= len(v.tokens) || !v.has[id] {
		return "", false
	}
	return v.tokens[id], true
}

func (v *vocabulary) size() int { return len(v.tokens) }

func (v *vocabulary) entries() int { return len(v.ids) }

// bpeMerge is the rank and result of merging a pair.
type bpeMerge struct{ rank, newID int32 }

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// mergeTable maps a pair key to its merge: open addressing with linear
// probing, about twice as fast as a Go map for this hot lookup.
type mergeTable struct {
	keys  []uint64 // emptyKey marks a free slot
	vals  []bpeMerge
	mask  uint64
	count int
}

const emptyKey = ^uint64(0)

func newMergeTable(n int) *mergeTable {
	size := 16
	for size < 2*n+1 {
		size <<= 1
	}
	t := &mergeTable{keys: make([]uint64, size), vals: make([]bpeMerge, size), mask: uint64(size - 1)}
	for i := range t.keys {
		t.keys[i] = emptyKey
	}
	return t
}

func mix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return k
}

// set inserts or overwrites (a later duplicate merge wins, as in HF).
func (t *mergeTable) set(k uint64, v bpeMerge) {
	for i := mix(k) & t.mask; ; i = (i + 1) & t.mask {
		if t.keys[i] == k {
			t.vals[i] = v
			return
		}
		if t.keys[i] == emptyKey {
			t.keys[i], t.vals[i] = k, v
			t.count++
			return
		}
	}
}

func (t *mergeTable) get(a, b int32) (bpeMerge, bool) {
	k := pairKey(a, b)
	for i := mix(k) & t.mask; ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case k:
			return t.vals[i], true
		case emptyKey:
			return bpeMerge{}, false
		}
	}
}

// bpeModel is Hugging Face's BPE model.
type bpeModel struct {
	vocabulary
	merges         *mergeTable
	asciiIDs       [128]int32 // id of single ASCII chars (no prefix/suffix), -1 when absent
	blIDs          [256]int32 // id of the byte-level char of each byte, -1 when absent
	unkToken       string     // "" when none
	prefix         string     // continuing_subword_prefix
	suffix         string     // end_of_word_suffix
	fuseUnk        bool
	byteFallback   bool
	ignoreMerges   bool
	dropout        float64
	byteIDs        [256]int32 // id of "<0xXX>", -1 when absent
	cache          *wordCache // by word
	blCache        *wordCache // by raw bytes of byte-level words
	symPool, hPool sync.Pool
}

// bpeConfig holds what tokenizer.json says about a BPE model.
type bpeConfig struct {
	vocab        map[string]int
	merges       [][2]string
	unkToken     string
	prefix       string
	suffix       string
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	dropout      float64
	cacheSize    int
}

func newBPE(c bpeConfig) (*bpeModel, error) {
	v, err := newVocabulary(c.vocab)
	if err != nil {
		return nil, err
	}
	if c.dropout < 0 || c.dropout > 1 {
		return nil, fmt.Errorf("dropout %v is outside [0, 1]", c.dropout)
	}
	m := &bpeModel{
		vocabulary: v, merges: newMergeTable(len(c.merges)),
		unkToken: c.unkToken, prefix: c.prefix, suffix: c.suffix,
		fuseUnk: c.fuseUnk, byteFallback: c.byteFallback, ignoreMerges: c.ignoreMerges,
		dropout: c.dropout,
	}
	for i, mg := range c.merges {
		a, ok := v.ids[mg[0]]
		if !ok {
			return nil, fmt.Errorf("merges[%d] (%q %q): token %q is not in the vocab", i, mg[0], mg[1], mg[0])
		}
		b, ok := v.ids[mg[1]]
		if !ok {
			return nil, fmt.Errorf("merges[%d] (%q %q): token %q is not in the vocab", i, mg[0], mg[1], mg[1])
		}
		second := mg[1]
		if len(c.prefix) > 0 && len(second) >= len(c.prefix) && second[:len(c.prefix)] == c.prefix {
			second = second[len(c.prefix):]
		} else if len(c.prefix) > 0 {
			second = second[min(len(c.prefix), len(second)):]
		}
		merged := mg[0] + second
		n, ok := v.ids[merged]
		if !ok {
			return nil, fmt.Errorf("merges[%d] (%q %q): merged token %q is not in the vocab", i, mg[0], mg[1], merged)
		}
		m.merges.set(pairKey(a, b), bpeMerge{int32(i), n})
	}
	for i := range m.asciiIDs {
		m.asciiIDs[i] = -1
		if id, ok := v.ids[string(rune(i))]; ok && c.prefix == "" && c.suffix == "" {
			m.asciiIDs[i] = id
		}
	}
	for i := range m.blIDs {
		m.blIDs[i] = -1
		if id, ok := v.ids[byteToStr[i]]; ok && c.prefix == "" && c.suffix == "" {
			m.blIDs[i] = id
		}
	}
	for i := range m.byteIDs {
		m.byteIDs[i] = -1
		if id, ok := v.ids[fmt.Sprintf("<0x%02X>", i)]; ok {
			m.byteIDs[i] = id
		}
	}
	size := c.cacheSize
	if size == 0 {
		size = defaultCacheSize
	}
	if size > 0 && c.dropout == 0 {
		m.cache = newWordCache(size)
		m.blCache = newWordCache(size)
		m.blCache = newWordCache(size)
	}
	return m, nil
}

// symbol is a node of the doubly linked list of a word being merged.
type symbol struct {
	id         int32
	prev, next int32
	len        int32 // bytes; 0 marks a symbol merged into its left neighbour
}

type mergeItem struct{ rank, pos, newID int32 }

// mergeHeap is a binary min-heap on (rank, pos).
type mergeHeap []mergeItem

func (h mergeHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *mergeHeap) push(x mergeItem) {
	*h = append(*h, x)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *mergeHeap) pop() mergeItem {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && s.less(l, m) {
			m = l
		}
		if r < n && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

func (m *bpeModel) unkID() (int32, error) {
	id, ok := m.ids[m.unkToken]
	if !ok {
		return 0, fmt.Errorf("unk_token %q is not in the vocab", m.unkToken)
	}
	return id, nil
}

// symbols builds the initial symbol list of w (HF BPE::merge_word, before merging).
func (m *bpeModel) symbols(syms []symbol, w string) ([]symbol, error) {
	add := func(id int32, n int) {
		k := int32(len(syms))
		if k > 0 {
			syms[k-1].next = k
		}
		syms = append(syms, symbol{id: id, prev: k - 1, next: -1, len: int32(n)})
	}
	unk, unkLen := int32(-1), 0
	for i := 0; i < len(w); {
		if c := w[i]; c < utf8.RuneSelf && unk < 0 {
			if id := m.asciiIDs[c]; id >= 0 {
				add(id, 1)
				i++
				continue
			}
		}
		_, sz := utf8.DecodeRuneInString(w[i:])
		end := i + sz
		s := w[i:end]
		if m.prefix != "" && i > 0 {
			s = m.prefix + s
		}
		if m.suffix != "" && end == len(w) {
			s = s + m.suffix
		}
		i = end
		if id, ok := m.ids[s]; ok {
			if unk >= 0 {
				add(unk, unkLen)
				unk = -1
			}
			add(id, sz)
			continue
		}
		if m.byteFallback {
			all := true
			for k := 0; k < len(s); k++ {
				if m.byteIDs[s[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				for k := 0; k < len(s); k++ {
					add(m.byteIDs[s[k]], 1)
				}
				continue
			}
		}
		if m.unkToken != "" {
			uid, err := m.unkID()
			if err != nil {
				return syms, err
			}
			switch {
			case unk >= 0 && m.fuseUnk:
				unkLen += sz
			case unk >= 0:
				add(unk, unkLen)
				unk, unkLen = uid, sz
			default:
				unk, unkLen = uid, sz
			}
		}
	}
	if unk >= 0 {
		add(unk, unkLen)
	}
	return syms, nil
}

// mergeAll applies the merges by rank, leftmost first (HF Word::merge_all).
func (m *bpeModel) mergeAll(syms []symbol, h *mergeHeap) {
	*h = (*h)[:0]
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges.get(syms[i].id, syms[i+1].id); ok {
			*h = append(*h, mergeItem{mg.rank, int32(i), mg.newID})
		}
	}
	// heapify
	for i := len(*h)/2 - 1; i >= 0; i-- {
		s := *h
		n := len(s)
		for j := i; ; {
			l, r, k := 2*j+1, 2*j+2, j
			if l < n && s.less(l, k) {
				k = l
			}
			if r < n && s.less(r, k) {
				k = r
			}
			if k == j {
				break
			}
			s[j], s[k] = s[k], s[j]
			j = k
		}
	}
	var skip []mergeItem
	for len(*h) > 0 {
		top := h.pop()
		if m.dropout > 0 && rand.Float64() < m.dropout {
			skip = append(skip, top)
			continue
		}
		for _, s := range skip {
			h.push(s)
		}
		skip = skip[:0]
		cur := &syms[top.pos]
		if cur.len == 0 || cur.next == -1 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		mg, ok := m.merges.get(cur.id, right.id)
		if !ok || mg.newID != top.newID {
			continue // stale entry
		}
		cur.id = top.newID
		cur.len += right.len
		cur.next = right.next
		syms[nextPos].len = 0
		if right.next >= 0 && int(right.next) < len(syms) {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if mg, ok := m.merges.get(syms[cur.prev].id, cur.id); ok {
				h.push(mergeItem{mg.rank, cur.prev, mg.newID})
			}
		}
		if cur.next >= 0 && int(cur.next) < len(syms) {
			if mg, ok := m.merges.get(cur.id, syms[cur.next].id); ok {
				h.push(mergeItem{mg.rank, top.pos, mg.newID})
			}
		}
	}
}

// maxCachedWord is HF's cache MAX_LENGTH: longer words are not cached.
const maxCachedWord = 256

// defaultCacheSize is HF's DEFAULT_CACHE_CAPACITY.
const defaultCacheSize = 10000

func (m *bpeModel) tokenize(dst []mtoken, w string) ([]mtoken, error) {
	if w == "" {
		return dst, nil
	}
	if m.cache != nil {
		if toks, ok := m.cache.get(w); ok {
			return append(dst, toks...), nil
		}
	}
	n0 := len(dst)
	dst, err := m.tokenizeUncached(dst, w)
	if err != nil {
		return dst, err
	}
	if m.cache != nil && len(w) < maxCachedWord {
		m.cache.put(w, dst[n0:])
	}
	return dst, nil
}

// tokenizeByteLevel tokenizes the byte-level form of raw; token ranges are
// in bytes of raw. Results are cached by raw.
func (m *bpeModel) tokenizeByteLevel(dst []mtoken, raw string) ([]mtoken, error) {
	if raw == "" {
		return dst, nil
	}
	if m.blCache != nil {
		if toks, ok := m.blCache.get(raw); ok {
			return append(dst, toks...), nil
		}
	}
	n0 := len(dst)
	if m.ignoreMerges {
		// A word that is itself in the vocabulary is one token.
		var buf [128]byte
		if id, ok := m.ids[string(appendByteLevel(buf[:0], raw))]; ok {
			return append(dst, mtoken{id: id, end: int32(len(raw))}), nil
		}
	}
	if fast, ok := m.byteLevelFast(dst, raw); ok {
		dst = fast
	} else {
		var buf [128]byte
		mapped := string(appendByteLevel(buf[:0], raw))
		var err error
		dst, err = m.tokenizeUncached(dst, mapped)
		if err != nil {
			return dst, err
		}
		mappedToRaw(dst[n0:], mapped)
	}
	if m.blCache != nil && len(raw) < maxCachedWord/2 {
		m.blCache.put(raw, dst[n0:])
	}
	return dst, nil
}

// byteLevelFast builds the symbols of a byte-level word straight from its
// raw bytes (one symbol per byte, lengths in raw bytes); ok is false when a
// byte's character is not in the vocabulary.
func (m *bpeModel) byteLevelFast(dst []mtoken, raw string) ([]mtoken, bool) {
	sp, _ := m.symPool.Get().(*[]symbol)
	if sp == nil {
		sp = new([]symbol)
	}
	if cap(*sp) < len(raw) {
		*sp = make([]symbol, 0, len(raw)+len(raw)/4)
	}
	syms := (*sp)[:0]
	dst = slices.Grow(dst, len(raw))
	for i := 0; i < len(raw); i++ {
		id := m.blIDs[raw[i]]
		if id < 0 {
			*sp = syms
			m.symPool.Put(sp)
			return dst, false
		}
		syms = append(syms, symbol{id: id, prev: int32(i - 1), next: int32(i + 1), len: 1})
	}
	syms[len(syms)-1].next = -1
	hp, _ := m.hPool.Get().(*mergeHeap)
	if hp == nil {
		hp = new(mergeHeap)
	}
	m.mergeAll(syms, hp)
	dst = emitSymbols(dst, syms)
	*sp = syms
	m.symPool.Put(sp)
	m.hPool.Put(hp)
	return dst, true
}

func emitSymbols(dst []mtoken, syms []symbol) []mtoken {
	pos := int32(0)
	for _, s := range syms {
		if s.len == 0 {
			continue
		}
		dst = append(dst, mtoken{id: s.id, start: pos, end: pos + s.len})
		pos += s.len
	}
	return dst
}

// mappedToRaw converts token ranges in a byte-level string into ranges in
// the raw bytes it came from (each mapped char is one raw byte).
func mappedToRaw(toks []mtoken, mapped string) {
	mpos, rpos := 0, 0
	adv := func(to int) int {
		for mpos < to && mpos < len(mapped) {
			_, sz := utf8.DecodeRuneInString(mapped[mpos:])
			mpos += sz
			rpos++
		}
		return rpos
	}
	for i := range toks {
		if int(toks[i].start) < mpos { // out of order (never for BPE): restart
			mpos, rpos = 0, 0
		}
		toks[i].start = int32(adv(int(toks[i].start)))
		toks[i].end = int32(adv(int(toks[i].end)))
	}
}

func (m *bpeModel) tokenizeUncached(dst []mtoken, w string) ([]mtoken, error) {
	if m.ignoreMerges {
		if id, ok := m.ids[w]; ok {
			return append(dst, mtoken{id: id, end: int32(len(w))}), nil
		}
	}
	sp, _ := m.symPool.Get().(*[]symbol)
	if sp == nil {
		sp = new([]symbol)
	}
	hp, _ := m.hPool.Get().(*mergeHeap)
	if hp == nil {
		hp = new(mergeHeap)
	}
	defer func() {
		m.symPool.Put(sp)
		m.hPool.Put(hp)
	}()
	if cap(*sp) < len(w) {
		*sp = make([]symbol, 0, len(w)+len(w)/4)
	}
	dst = slices.Grow(dst, len(w))
	syms, err := m.symbols((*sp)[:0], w)
	*sp = syms
	if err != nil {
		return dst, err
	}
	m.mergeAll(syms, hp)
	pos := int32(0)
	for _, s := range syms {
		if s.len == 0 {
			continue
		}
		dst = append(dst, mtoken{id: s.id, start: pos, end: pos + s.len})
		pos += s.len
	}
	return dst, nil
}

// wordCache is a bounded, concurrency-safe word -> tokens cache. Like HF's,
// it stops admitting entries once full (no eviction). Reads are lock-free:
// they look up an immutable map published through an atomic pointer; new
// entries wait in a small pending map and are published in batches, so the
// total copying stays linear in the capacity.
type wordCache struct {
	cur      atomic.Pointer[map[string][]mtoken]
	mu       sync.Mutex
	pending  map[string][]mtoken
	size     int // published + pending
	capacity int
}

func newWordCache(capacity int) *wordCache {
	c := &wordCache{pending: map[string][]mtoken{}, capacity: capacity}
	m := map[string][]mtoken{}
	c.cur.Store(&m)
	return c
}

func (c *wordCache) get(w string) ([]mtoken, bool) {
	v, ok := (*c.cur.Load())[w]
	return v, ok
}

func (c *wordCache) put(w string, toks []mtoken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.size >= c.capacity {
		return
	}
	if _, ok := c.pending[w]; ok {
		return
	}
	cur := *c.cur.Load()
	if _, ok := cur[w]; ok {
		return
	}
	c.pending[w] = append([]mtoken(nil), toks...)
	c.size++
	if len(c.pending) >= max(64, len(cur)/2) || c.size >= c.capacity {
		next := make(map[string][]mtoken, len(cur)+len(c.pending))
		for k, v := range cur {
			next[k] = v
		}
		for k, v := range c.pending {
			next[k] = v
		}
		c.cur.Store(&next)
		clear(c.pending)
	}
}

// wordPieceModel is Hugging Face's WordPiece model.
type wordPieceModel struct {
	vocabulary
	unkToken string
	prefix   string
	maxChars int
}

func (m *wordPieceModel) unk(dst []mtoken, w string) ([]mtoken, error) {
	id, ok := m.ids[m.unkToken]
	if !ok {
		return dst, fmt.Errorf("WordPiece unk_token %q is not in the vocab", m.unkToken)
	}
	return append(dst, mtoken{id: id, end: int32(len(w))}), nil
}

func (m *wordPieceModel) tokenize(dst []mtoken, w string) ([]mtoken, error) {
	if utf8.RuneCountInString(w) > m.maxChars {
		return m.unk(dst, w)
	}
	n0 := len(dst)
	for start := 0; start < len(w); {
		end := len(w)
		found := false
		for start < end {
			sub := w[start:end]
			if start > 0 {
				sub = m.prefix + sub
			}
			if id, ok := m.ids[sub]; ok {
				dst = append(dst, mtoken{id: id, start: int32(start), end: int32(end)})
				found = true
				break
			}
			_, sz := utf8.DecodeLastRuneInString(w[start:end])
			end -= sz
		}
		if !found {
			return m.unk(dst[:n0], w)
		}
		start = end
	}
	return dst, nil
}

// wordLevelModel is Hugging Face's WordLevel model.
type wordLevelModel struct {
	vocabulary
	unkToken string
}

func (m *wordLevelModel) tokenize(dst []mtoken, w string) ([]mtoken, error) {
	if id, ok := m.ids[w]; ok {
		return append(dst, mtoken{id: id, end: int32(len(w))}), nil
	}
	id, ok := m.ids[m.unkToken]
	if !ok {
		return dst, fmt.Errorf("WordLevel: %q is not in the vocab and unk_token %q is missing", w, m.unkToken)
	}
	return append(dst, mtoken{id: id, end: int32(len(w))}), nil
}
