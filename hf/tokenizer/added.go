package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// AddedToken is an entry of tokenizer.json's "added_tokens": a token matched
// in the raw text before the model runs.
type AddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"` // only match when not inside a word
	LStrip     bool   `json:"lstrip"`      // swallow whitespace on the left
	RStrip     bool   `json:"rstrip"`      // swallow whitespace on the right
	Normalized bool   `json:"normalized"`  // match against the normalized text
	Special    bool   `json:"special"`     // skipped by Decode(ids, true)
}

// matcher finds the leftmost-longest non-overlapping occurrences of a set of
// patterns (what HF does with Aho-Corasick, MatchKind::LeftmostLongest).
type matcher struct {
	byFirst [256][]int // pattern indices by first byte, longest first
	pats    []string
	toks    []*AddedToken
}

func newMatcher(pats []string, toks []*AddedToken) *matcher {
	m := &matcher{pats: pats, toks: toks}
	for i, p := range pats {
		if p == "" {
			continue
		}
		m.byFirst[p[0]] = append(m.byFirst[p[0]], i)
	}
	for b := range m.byFirst {
		l := m.byFirst[b]
		sort.SliceStable(l, func(i, j int) bool { return len(pats[l[i]]) > len(pats[l[j]]) })
	}
	return m
}

// next returns the first match at or after from: pattern index and byte range.
func (m *matcher) next(s string, from int) (int, int, int) {
	for i := from; i < len(s); i++ {
		for _, k := range m.byFirst[s[i]] {
			p := m.pats[k]
			if len(s)-i >= len(p) && s[i:i+len(p)] == p {
				return k, i, i + len(p)
			}
		}
	}
	return -1, 0, 0
}

// segment is a piece of input: either an added token (tok != nil) or text
// still to be normalized/pre-tokenized/modelled.
type segment struct {
	n   nstr
	tok *AddedToken
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordChar(r)
}

// split cuts n at the matches of m, honouring single_word/lstrip/rstrip (HF
// AddedVocabulary::find_matches), and appends the segments to dst.
func (m *matcher) split(dst []segment, n nstr) []segment {
	s := n.s
	if m == nil || len(m.pats) == 0 || s == "" {
		return append(dst, segment{n: n})
	}
	startOffset := 0
	for from := 0; from < len(s); {
		k, start, stop := m.next(s, from)
		if k < 0 {
			break
		}
		from = stop
		tok := m.toks[k]
		if tok.SingleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if tok.LStrip {
			ns := start
			for ns > 0 {
				r, sz := utf8.DecodeLastRuneInString(s[:ns])
				if !unicode.IsSpace(r) {
					break
				}
				ns -= sz
			}
			start = max(ns, startOffset)
		}
		if tok.RStrip {
			for stop < len(s) {
				r, sz := utf8.DecodeRuneInString(s[stop:])
				if !unicode.IsSpace(r) {
					break
				}
				stop += sz
			}
			from = stop
		}
		if startOffset < start {
			dst = append(dst, segment{n: n.slice(startOffset, start)})
		}
		dst = append(dst, segment{n: n.slice(start, stop), tok: tok})
		startOffset = stop
	}
	if startOffset < len(s) {
		dst = append(dst, segment{n: n.slice(startOffset, len(s))})
	}
	return dst
}

// addedVocab holds the added tokens and their matchers.
type addedVocab struct {
	tokens    []*AddedToken
	byContent map[string]*AddedToken
	byID      map[int]*AddedToken
	raw       *matcher // tokens with normalized == false
	norm      *matcher // tokens with normalized == true, by normalized content
}

func newAddedVocab(toks []AddedToken, nz normalizer) *addedVocab {
	a := &addedVocab{byContent: map[string]*AddedToken{}, byID: map[int]*AddedToken{}}
	var rawP, normP []string
	var rawT, normT []*AddedToken
	for i := range toks {
		t := &toks[i]
		a.tokens = append(a.tokens, t)
		a.byContent[t.Content] = t
		a.byID[t.ID] = t
		if t.Content == "" {
			continue
		}
		if t.Normalized {
			p := t.Content
			if nz != nil {
				p = nz.normalize(newNstr(p, 0)).s
			}
			normP = append(normP, p)
			normT = append(normT, t)
		} else {
			rawP = append(rawP, t.Content)
			rawT = append(rawT, t)
		}
	}
	a.raw = newMatcher(rawP, rawT)
	a.norm = newMatcher(normP, normT)
	return a
}

// extract splits text on added tokens and normalizes the rest (HF
// AddedVocabulary::extract_and_normalize).
func (a *addedVocab) extract(root nstr, nz normalizer) []segment {
	first := a.raw.split(nil, root)
	out := make([]segment, 0, len(first))
	for _, sg := range first {
		if sg.tok != nil {
			out = append(out, sg)
			continue
		}
		n := sg.n
		if nz != nil {
			n = nz.normalize(n)
		}
		out = a.norm.split(out, n)
	}
	return out
}
