package tokenizer

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// unkPenalty is HF's K_UNK_PENALTY: an unknown char scores min_score - 10.
const unkPenalty = 10.0

// unigramModel is Hugging Face's Unigram model (SentencePiece unigram):
// the segmentation with the highest total log-probability (Viterbi), unknown
// chars fused into one unk token, optional byte fallback.
type unigramModel struct {
	vocabulary
	scores       []float64
	unkID        int32 // -1 when none
	byteFallback bool
	byteIDs      [256]int32
	minScore     float64
	trie         *byteTrie
}

// byteTrie is a trie over bytes; nodes are ints, edges live in an
// open-addressing table keyed by (node, byte).
type byteTrie struct {
	edges *mergeTable // key (node, byte) -> child node in rank
	piece []int32     // piece id ending at node, or -1
}

func newByteTrie() *byteTrie {
	return &byteTrie{edges: newMergeTable(1 << 10), piece: []int32{-1}}
}

func (t *byteTrie) child(node int32, b byte) (int32, bool) {
	m, ok := t.edges.get(node, int32(b))
	return m.rank, ok
}

func (t *byteTrie) insert(s string, id int32) {
	node := int32(0)
	for i := 0; i < len(s); i++ {
		next, ok := t.child(node, s[i])
		if !ok {
			next = int32(len(t.piece))
			t.piece = append(t.piece, -1)
			if t.edges.count*2+2 > len(t.edges.keys) {
				t.edges = t.edges.grown()
			}
			t.edges.set(pairKey(node, int32(s[i])), bpeMerge{rank: next})
		}
		node = next
	}
	t.piece[node] = id
}

// grown returns a copy of the table with twice the capacity.
func (t *mergeTable) grown() *mergeTable {
	n := newMergeTable(len(t.keys))
	for i, k := range t.keys {
		if k != emptyKey {
			n.set(k, t.vals[i])
		}
	}
	return n
}

func newUnigram(pieces []string, scores []float64, unkID int, byteFallback bool) (*unigramModel, error) {
	m := &unigramModel{scores: scores, unkID: -1, byteFallback: byteFallback, trie: newByteTrie(), minScore: math.Inf(1)}
	m.ids = make(map[string]int32, len(pieces))
	m.tokens = pieces
	m.has = make([]bool, len(pieces))
	for i, p := range pieces {
		m.ids[p] = int32(i) // a later duplicate wins, as in HF
		m.has[i] = true
		m.minScore = math.Min(m.minScore, scores[i])
		if p != "" {
			m.trie.insert(p, int32(i))
		}
	}
	if unkID >= 0 {
		if unkID >= len(pieces) {
			return nil, fmt.Errorf("unk_id %d is outside the vocab (%d pieces)", unkID, len(pieces))
		}
		m.unkID = int32(unkID)
	}
	for i := range m.byteIDs {
		m.byteIDs[i] = -1
		if id, ok := m.ids[fmt.Sprintf("<0x%02X>", i)]; ok {
			m.byteIDs[i] = id
		}
	}
	return m, nil
}

// entries counts pieces as HF does (the list, duplicates included).
func (m *unigramModel) entries() int { return len(m.tokens) }

type latticeNode struct {
	score    float64
	startsAt int32 // -1: unreached
	id       int32
}

func (m *unigramModel) tokenize(dst []mtoken, w string) ([]mtoken, error) {
	if w == "" {
		return dst, nil
	}
	n := len(w)
	best := make([]latticeNode, n+1)
	for i := range best {
		best[i].startsAt = -1
	}
	best[0].startsAt = 0
	unkScore := m.minScore - unkPenalty
	for start := 0; start < n; {
		_, mblen := utf8.DecodeRuneInString(w[start:])
		base := best[start].score
		single := false
		node := int32(0)
		for k := start; k < n; k++ {
			next, ok := m.trie.child(node, w[k])
			if !ok {
				break
			}
			node = next
			id := m.trie.piece[node]
			if id < 0 {
				continue
			}
			id = m.ids[m.tokens[id]]
			end := k + 1
			cand := m.scores[id] + base
			if t := &best[end]; t.startsAt < 0 || cand > t.score {
				*t = latticeNode{cand, int32(start), id}
			}
			if end-start == mblen {
				single = true
			}
		}
		if !single {
			if m.unkID < 0 {
				return dst, fmt.Errorf("Unigram: %q is not in the vocab and there is no unk_id", w[start:start+mblen])
			}
			cand := unkScore + base
			if t := &best[start+mblen]; t.startsAt < 0 || cand > t.score {
				*t = latticeNode{cand, int32(start), m.unkID}
			}
		}
		start += mblen
	}
	// Walk back from the end; consecutive unknown chars fuse into one piece
	// (HF Unigram always fuses unknowns).
	type seg struct{ a, b int32 }
	var segs []seg
	pendA, pendB := int32(-1), int32(-1)
	for end := int32(n); end > 0; {
		nd := best[end]
		if m.unkID >= 0 && nd.id == m.unkID {
			if pendA < 0 {
				pendB = end
			}
			pendA = nd.startsAt
		} else {
			if pendA >= 0 {
				segs = append(segs, seg{pendA, pendB})
				pendA = -1
			}
			segs = append(segs, seg{nd.startsAt, end})
		}
		end = nd.startsAt
	}
	if pendA >= 0 {
		segs = append(segs, seg{pendA, pendB})
	}
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		piece := w[s.a:s.b]
		if id, ok := m.ids[piece]; ok {
			dst = append(dst, mtoken{id: id, start: s.a, end: s.b})
			continue
		}
		if m.byteFallback {
			all := true
			for k := 0; k < len(piece); k++ {
				if m.byteIDs[piece[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				// Every byte token gets the offsets of the whole piece, as in HF.
				for k := 0; k < len(piece); k++ {
					dst = append(dst, mtoken{id: m.byteIDs[piece[k]], start: s.a, end: s.b})
				}
				continue
			}
		}
		if m.unkID < 0 {
			return dst, fmt.Errorf("Unigram: %q is not in the vocab and there is no unk_id", piece)
		}
		dst = append(dst, mtoken{id: m.unkID, start: s.a, end: s.b, raw: true})
	}
	return dst, nil
}
