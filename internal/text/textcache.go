package text

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Cache remembers the result of a pure string function (masking a
// message, normalizing it) for the messages seen most: a storm repeats one
// message, and the masker and the normalizer then run once per distinct
// message rather than once per occurrence. It holds at most textCacheSize results
// of short strings, then stops adding. Entries are keyed by a seeded 64-bit
// hash, so the cache never keeps a raw (unmasked) message.
type Cache struct {
	seed maphash.Seed
	once sync.Once
	m    sync.Map // uint64 -> cachedText
	n    atomic.Int64
}

// cachedText is one result, with the input's length as a cheap check
// against a hash collision.
type cachedText struct {
	inLen int
	out   string
}

const (
	textCacheSize   = 4096
	textCacheMaxLen = 1024
)

// Get returns f(s), from the cache when s is short and was seen before.
func (c *Cache) Get(s string, f func(string) string) string {
	if len(s) > textCacheMaxLen {
		return f(s)
	}
	c.once.Do(func() { c.seed = maphash.MakeSeed() })
	key := maphash.String(c.seed, s)
	if v, ok := c.m.Load(key); ok {
		if ct := v.(cachedText); ct.inLen == len(s) {
			return ct.out
		}
		return f(s)
	}
	r := f(s)
	if c.n.Load() < textCacheSize {
		if _, loaded := c.m.LoadOrStore(key, cachedText{inLen: len(s), out: r}); !loaded {
			c.n.Add(1)
		}
	}
	return r
}
