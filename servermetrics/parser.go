package servermetrics

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"
)

// pageParser parses the successive pages of one endpoint, and reuses what
// did not change. Most of a model server's page is the same from one
// scrape to the next (TensorFlow's own families, process and build
// figures), and parsing is nearly all of what a scrape costs the client.
// A text page is read as it arrives and cut into its families' blocks (a
// block starts at a HELP or TYPE line after a sample); a block byte for
// byte one of the previous page's gives the same series without being
// parsed again, and the blocks that changed are parsed by expfmt a few
// hundred kilobytes at a time: expfmt's text decoder builds every family
// of what it is given before handing out the first, and a page of
// 200,000 series given whole cost 300 MB. Other formats are decoded a
// family at a time.
//
// Of the families loadprof does not know, the first maxRawSeries series
// seen are kept, the same ones every scrape (a series kept once stays
// kept: one dropped in one scrape and kept in the next would count its
// whole value as new); the rest are counted in Snapshot.DroppedRaw.
type pageParser struct {
	filter Filter
	seed   maphash.Seed
	blocks map[uint64]parsedBlock // the previous page's blocks by content hash
	raw    map[string]struct{}    // the unknown families' series admitted
}

type parsedBlock struct {
	series   []keyedSeries
	families []string // its HELP and TYPE lines'
	dropped  int      // series not admitted
	// others: its known families' series of other models (Snapshot's
	// otherModels).
	others map[string]map[string]bool
}

type keyedSeries struct {
	key string
	se  *Series
}

// parseChunkBytes is how much of the changed blocks expfmt parses at once.
const parseChunkBytes = 256 << 10

func newPageParser(f Filter) *pageParser {
	return &pageParser{filter: f, seed: maphash.MakeSeed(), blocks: map[uint64]parsedBlock{}, raw: map[string]struct{}{}}
}

// admit keeps an unknown family's series if it was kept before or there
// is room.
func (p *pageParser) admit(key string) bool {
	if _, ok := p.raw[key]; ok {
		return true
	}
	if len(p.raw) >= maxRawSeries {
		return false
	}
	p.raw[key] = struct{}{}
	return true
}

func (p *pageParser) parse(r io.Reader, contentType string) (*Snapshot, error) {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	format := expfmt.ResponseFormat(h)
	if format == expfmt.FmtUnknown {
		format = expfmt.FmtText // TF Serving answers with no Content-Type of its own
	}
	if format.FormatType() != expfmt.TypeTextPlain {
		return parseDecoder(expfmt.NewDecoder(r, format), p.filter, p.admit)
	}
	snap := &Snapshot{Series: make(map[string]*Series, len(p.blocks))}
	blocks := make(map[uint64]parsedBlock, len(p.blocks))
	owner := map[string]uint64{} // the block that declares each family of the page
	var chunk []byte             // changed blocks not parsed yet
	cacheable := true            // every family they hold is declared by a HELP or TYPE line
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		part, err := parseDecoder(expfmt.NewDecoder(bytes.NewReader(chunk), format), p.filter, p.admit)
		chunk = chunk[:0]
		if err != nil {
			return err
		}
		snap.DroppedRaw += part.DroppedRaw
		for family, n := range part.droppedBy {
			if sum, ok := owner[family]; ok {
				b := blocks[sum]
				b.dropped += n
				blocks[sum] = b
			} else {
				cacheable = false
			}
		}
		for family, models := range part.otherModels {
			for m := range models {
				snap.noteOtherModel(family, m)
			}
			sum, ok := owner[family]
			if !ok {
				cacheable = false
				continue
			}
			b := blocks[sum]
			if b.others == nil {
				b.others = map[string]map[string]bool{}
			}
			b.others[family] = models
			blocks[sum] = b
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
		return nil
	}
	sc := blockScanner{r: bufio.NewReaderSize(r, 64<<10)}
	for {
		block, families, err := sc.next()
		if err != nil {
			return nil, err
		}
		if block == nil {
			break
		}
		sum := maphash.Bytes(p.seed, block)
		cached, seen := p.blocks[sum]
		if seen {
			families = cached.families
		}
		for _, name := range families {
			if _, twice := owner[name]; twice {
				return nil, fmt.Errorf("text format parsing error: the family %s is in two groups of the page", name)
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
			snap.DroppedRaw += cached.dropped
			for family, models := range cached.others {
				for m := range models {
					snap.noteOtherModel(family, m)
				}
			}
			continue
		}
		blocks[sum] = parsedBlock{families: families}
		chunk = append(chunk, block...)
		cacheable = cacheable && len(families) > 0
		if len(chunk) >= parseChunkBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if !cacheable {
		// A family without its HELP or TYPE line may have been parsed
		// with another block's: nothing is reused next time.
		blocks = map[uint64]parsedBlock{}
	}
	p.blocks = blocks
	return snap, nil
}

// blockScanner reads a text page a block at a time: its lines up to a
// HELP or TYPE line that follows a sample line. The text format gives
// each family's lines in one group, HELP and TYPE first, so a block holds
// whole families, and blocks can be parsed apart.
type blockScanner struct {
	r     *bufio.Reader
	block []byte // reused: a block is hashed, and copied only when it changed
	held  []byte // the line that starts the next block, read already
	done  bool
}

// next is the page's next block, valid until the following call, and the
// families its HELP and TYPE lines declare; nil at the end.
func (b *blockScanner) next() ([]byte, []string, error) {
	if b.done {
		return nil, nil, nil
	}
	b.block = append(b.block[:0], b.held...)
	var families []string
	if len(b.held) > 0 {
		if name := declared(b.held); name != "" {
			families = append(families, name)
		}
	}
	b.held = b.held[:0]
	sampled := false
	for {
		line, err := b.line()
		if len(line) > 0 {
			switch {
			case bytes.HasPrefix(line, []byte("# HELP ")) || bytes.HasPrefix(line, []byte("# TYPE ")):
				if sampled {
					b.held = append(b.held, line...)
					return b.block, families, nil
				}
				if name := declared(line); name != "" {
					families = append(families, name)
				}
			case len(bytes.TrimSpace(line)) > 0 && line[0] != '#':
				sampled = true
			}
			b.block = append(b.block, line...)
		}
		if err == io.EOF {
			b.done = true
			if len(b.block) == 0 {
				return nil, nil, nil
			}
			return b.block, families, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// line reads one line, its newline included (none at the end of the
// page), however long.
func (b *blockScanner) line() ([]byte, error) {
	line, err := b.r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	long := append([]byte(nil), line...)
	for err == bufio.ErrBufferFull {
		line, err = b.r.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}

// declared is the family a HELP or TYPE line declares.
func declared(line []byte) string {
	if f := bytes.Fields(line[len("# HELP "):]); len(f) > 0 {
		return string(f[0])
	}
	return ""
}
