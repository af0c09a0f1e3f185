package servermetrics

import (
	"bytes"
	"hash/maphash"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"
)

// pageParser parses the successive pages of one endpoint, and reuses what
// did not change. Most of a model server's page is the same from one
// scrape to the next (TensorFlow's own families, process and build
// figures), and parsing is nearly all of what a scrape costs the client.
// A text page is cut into its families' blocks (a block starts at a HELP
// or TYPE line after a sample); a block byte for byte one of the previous
// page's gives the same series without being parsed again, and the blocks
// that changed are parsed together by expfmt. Other formats are parsed
// whole (Parse).
type pageParser struct {
	filter Filter
	seed   maphash.Seed
	blocks map[uint64]parsedBlock // the previous page's blocks by content hash
	size   int                    // the previous page's length
}

type parsedBlock struct {
	series   []keyedSeries
	families []string // its HELP and TYPE lines'
}

type keyedSeries struct {
	key string
	se  *Series
}

func newPageParser(f Filter) *pageParser {
	return &pageParser{filter: f, seed: maphash.MakeSeed(), blocks: map[uint64]parsedBlock{}}
}

func (p *pageParser) parse(r io.Reader, contentType string) (*Snapshot, error) {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	format := expfmt.ResponseFormat(h)
	if format == expfmt.FmtUnknown {
		format = expfmt.FmtText // TF Serving answers with no Content-Type of its own
	}
	if format.FormatType() != expfmt.TypeTextPlain {
		return Parse(r, contentType, p.filter)
	}
	buf := bytes.NewBuffer(make([]byte, 0, p.size+p.size/8+512)) // pages keep their size
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	page := buf.Bytes()
	p.size = len(page)
	whole := page
	snap := &Snapshot{Series: make(map[string]*Series, len(p.blocks))}
	blocks := make(map[uint64]parsedBlock, len(p.blocks))
	var changed []byte           // the blocks to parse, one after another
	owner := map[string]uint64{} // the block that declares each family of the page
	var parsing []uint64         // the changed blocks' hashes
	cacheable := true            // every family they hold is declared by a HELP or TYPE line
	for len(page) > 0 {
		block, families, rest := nextBlock(page)
		page = rest
		sum := maphash.Bytes(p.seed, block)
		cached, seen := p.blocks[sum]
		if seen {
			families = cached.families
		}
		for _, name := range families {
			if _, twice := owner[name]; twice {
				// A family in two groups (an earlier block's): Parse says
				// what is wrong with the page.
				return Parse(bytes.NewReader(whole), contentType, p.filter)
			}
		}
		for _, name := range families {
			owner[name] = sum
		}
		if seen {
			blocks[sum] = cached
			for _, ks := range cached.series {
				snap.Series[ks.key] = ks.se
			}
			continue
		}
		parsing = append(parsing, sum)
		blocks[sum] = parsedBlock{families: families}
		changed = append(changed, block...)
		cacheable = cacheable && len(families) > 0
	}
	if len(changed) > 0 {
		part, err := parseDecoder(expfmt.NewDecoder(bytes.NewReader(changed), format), p.filter)
		if err != nil {
			return nil, err
		}
		for key, se := range part.Series {
			snap.Series[key] = se
			sum, ok := owner[se.Family]
			if !ok {
				cacheable = false
				continue
			}
			b := blocks[sum]
			b.series = append(b.series, keyedSeries{key, se})
			blocks[sum] = b
		}
		if !cacheable {
			for _, sum := range parsing {
				delete(blocks, sum) // parsed again next time
			}
		}
	}
	p.blocks = blocks
	return snap, nil
}

// nextBlock cuts page after its first block: its lines up to a HELP or
// TYPE line that follows a sample line, and the families its HELP and
// TYPE lines declare. The text format gives each family's lines in one
// group, HELP and TYPE first, so a block holds whole families.
func nextBlock(page []byte) (block []byte, families []string, rest []byte) {
	sampled := false
	for at := 0; at < len(page); {
		end := bytes.IndexByte(page[at:], '\n')
		if end < 0 {
			end = len(page)
		} else {
			end += at + 1
		}
		line := page[at:end]
		switch {
		case bytes.HasPrefix(line, []byte("# HELP ")) || bytes.HasPrefix(line, []byte("# TYPE ")):
			if sampled {
				return page[:at], families, page[at:]
			}
			if f := bytes.Fields(line[len("# HELP "):]); len(f) > 0 {
				families = append(families, string(f[0]))
			}
		case len(bytes.TrimSpace(line)) > 0 && line[0] != '#':
			sampled = true
		}
		at = end
	}
	return page, families, nil
}
