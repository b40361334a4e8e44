package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
)

// Unicode data. Go's unicode package (and so regexp's \p{...}) is Unicode
// 15.0; Hugging Face tokenizers' regex engine (Oniguruma) and Rust's char
// methods know Unicode 16.0, which added letters, digits (Garay's, for one)
// and emoji (U+1FAE9 🫩). The pre-tokenizers' character classes therefore use
// the generated tables of unicode16_tables.go (scripts/gen-unicode-tables.sh)
// instead of Go's: isLetter, isNumber, isWordChar, lowercasing, and the
// \p{...}, \d and \w of Split patterns, which translateRegex spells out as
// explicit ranges.
//
// The BERT-style pieces (BertPreTokenizer, Punctuation, BertNormalizer's
// control characters, StripAccents) keep Go's tables: Hugging Face implements
// them with the unicode_categories and unicode-normalization-alignments
// crates, whose tables are older than either version.

var (
	ucdNamesOnce sync.Once
	ucdNames     map[string]*unicode.RangeTable // canonical name -> table
	ucdBodies    sync.Map                       // *unicode.RangeTable -> [2]string{body, complement}
)

// canonicalUCDName folds a property name as Oniguruma does: case-insensitive,
// ignoring spaces, hyphens and underscores.
func canonicalUCDName(name string) string {
	return strings.ToLower(strings.NewReplacer(" ", "", "-", "", "_", "").Replace(name))
}

// ucdLookup returns the table of a General_Category (short or long name) or
// Script, and whether the name denotes its complement (Assigned = not Cn).
func ucdLookup(name string) (tab *unicode.RangeTable, neg bool, ok bool) {
	ucdNamesOnce.Do(func() {
		ucdNames = map[string]*unicode.RangeTable{}
		for n, t := range ucdScripts {
			ucdNames[canonicalUCDName(n)] = t
		}
		for long, short := range ucdCategoryAliases {
			ucdNames[canonicalUCDName(long)] = ucdCategories[short]
		}
		for n, t := range ucdCategories {
			ucdNames[canonicalUCDName(n)] = t
		}
	})
	c := canonicalUCDName(name)
	if c == "assigned" {
		return ucdCategories["Cn"], true, true
	}
	tab, ok = ucdNames[c]
	return tab, false, ok
}

// ucdClassBodies returns the inside of a bracketed character class that
// matches tab, and one that matches its complement.
func ucdClassBodies(tab *unicode.RangeTable) (body, complement string) {
	if v, ok := ucdBodies.Load(tab); ok {
		bs := v.([2]string)
		return bs[0], bs[1]
	}
	var rs [][2]rune
	add := func(lo, hi, stride rune) {
		if stride == 1 {
			rs = append(rs, [2]rune{lo, hi})
			return
		}
		for r := lo; r <= hi; r += stride {
			rs = append(rs, [2]rune{r, r})
		}
	}
	for _, r := range tab.R16 {
		add(rune(r.Lo), rune(r.Hi), rune(r.Stride))
	}
	for _, r := range tab.R32 {
		add(rune(r.Lo), rune(r.Hi), rune(r.Stride))
	}
	var b, c strings.Builder
	next := rune(0) // first code point not yet covered, for the complement
	for _, r := range rs {
		writeClassRange(&b, r[0], r[1])
		if r[0] > next {
			writeClassRange(&c, next, r[0]-1)
		}
		next = r[1] + 1
	}
	if next <= unicode.MaxRune {
		writeClassRange(&c, next, unicode.MaxRune)
	}
	bs := [2]string{b.String(), c.String()}
	ucdBodies.Store(tab, bs)
	return bs[0], bs[1]
}

func writeClassRange(b *strings.Builder, lo, hi rune) {
	if lo == hi {
		fmt.Fprintf(b, `\x{%x}`, lo)
		return
	}
	fmt.Fprintf(b, `\x{%x}-\x{%x}`, lo, hi)
}

// translateProperty rewrites the property escape that starts at p[i] ('\p',
// '\P', '\p{^...}' or the one-letter '\pL') into explicit ranges of the
// generated tables. It returns the replacement, the index of the escape's
// last byte, and false for names the tables lack (left to Go's regexp).
func translateProperty(p string, i int, inClass bool) (string, int, bool) {
	neg := p[i+1] == 'P'
	var name string
	end := i + 2
	switch {
	case end < len(p) && p[end] == '{':
		k := strings.IndexByte(p[end:], '}')
		if k < 0 {
			return "", i, false
		}
		name = p[end+1 : end+k]
		end += k
	case end < len(p):
		name = p[end : end+1]
	default:
		return "", i, false
	}
	if strings.HasPrefix(name, "^") {
		neg = !neg
		name = name[1:]
	}
	tab, tneg, ok := ucdLookup(name)
	if !ok {
		return "", i, false
	}
	if tneg {
		neg = !neg
	}
	body, comp := ucdClassBodies(tab)
	switch {
	case inClass && !neg:
		return body, end, true
	case inClass:
		return comp, end, true
	case neg:
		return "[" + comp + "]", end, true
	}
	return "[" + body + "]", end, true
}

// ucdToLower returns the simple lowercase mapping of r (r itself when it has none).
func ucdToLower(r rune) rune {
	lo, hi := 0, len(ucdLower)
	for lo < hi {
		m := lo + (hi-lo)/2
		cr := ucdLower[m]
		switch {
		case r < rune(cr.Lo):
			hi = m
		case r > rune(cr.Hi):
			lo = m + 1
		default:
			d := cr.Delta[unicode.LowerCase]
			if d > unicode.MaxRune { // unicode.UpperLower: pairs starting with the upper case letter
				return rune(cr.Lo) + ((r - rune(cr.Lo)) &^ 1) + 1
			}
			return r + d
		}
	}
	return r
}
