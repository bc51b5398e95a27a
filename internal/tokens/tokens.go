// Package tokens defines the token counts a call is charged for, once, for
// the meter that reads them from the wire, the ledger that records them and
// the views that show them.
package tokens

// Counts are the seven counters of a call's usage that its price depends
// on. The JSON names are the contract's.
type Counts struct {
	// InputTokens is uncached input.
	InputTokens int64 `json:"input_tokens"`
	// OutputTokens is output, thinking included.
	OutputTokens int64 `json:"output_tokens"`
	// CacheCreationInputTokens is all cache writes.
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	// CacheCreation5mInputTokens is the 5-minute share of the cache writes.
	CacheCreation5mInputTokens int64 `json:"cache_creation_5m_input_tokens"`
	// CacheCreation1hInputTokens is the 1-hour share of the cache writes.
	CacheCreation1hInputTokens int64 `json:"cache_creation_1h_input_tokens"`
	// CacheReadInputTokens is cache reads.
	CacheReadInputTokens int64 `json:"cache_read_input_tokens"`
	// WebSearchRequests is server-side web searches (priced per 1,000).
	WebSearchRequests int64 `json:"web_search_requests"`
}

// Add adds o to c, counter by counter.
func (c *Counts) Add(o *Counts) {
	c.InputTokens += o.InputTokens
	c.OutputTokens += o.OutputTokens
	c.CacheCreationInputTokens += o.CacheCreationInputTokens
	c.CacheCreation5mInputTokens += o.CacheCreation5mInputTokens
	c.CacheCreation1hInputTokens += o.CacheCreation1hInputTokens
	c.CacheReadInputTokens += o.CacheReadInputTokens
	c.WebSearchRequests += o.WebSearchRequests
}

// TotalInputTokens is the input that decides length-based prices: uncached
// input plus cache writes plus cache reads.
func (c *Counts) TotalInputTokens() int64 {
	return c.InputTokens + c.CacheCreationInputTokens + c.CacheReadInputTokens
}
