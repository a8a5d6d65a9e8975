package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// ErrorSource is the source context of one line of code: the lines around
// it as they were read from its file when a frame at that line was first
// captured, masked (table "app_error_sources"). It is stored once per file
// and line, whichever error had it first: a line that changes in a later
// release keeps the text first stored.
type ErrorSource struct {
	File string `gorm:"size:512;primaryKey" json:"file"` // as the traceback names it
	Line int    `gorm:"primaryKey;autoIncrement:false" json:"line"`
	// Lines are the lines from FirstSourceLine(Line) to Line+SourceContext
	// (fewer at the end of the file), newline-separated.
	Lines     string    `gorm:"not null;default:''" json:"lines"`
	CreatedAt time.Time `gorm:"not null" json:"created_at"`
}

// TableName implements GORM's Tabler.
func (ErrorSource) TableName() string { return "app_error_sources" }

// The bounds of source context.
const (
	// SourceContext is how many lines before and after a frame's line are
	// kept.
	SourceContext = 3
	// MaxSourceFrames is how many in-app frames of a traceback (the
	// newest) get source context.
	MaxSourceFrames = 8
	// MaxSourceFileName is the longest file name stored (app_error_sources.file).
	MaxSourceFileName = 512
	// MaxSourceLineBytes caps one line of source context.
	MaxSourceLineBytes = 300
	// MaxSourceBytes is how much of a stored Lines the dashboard reads: the
	// lines of a snippet at their cap, masked, fit.
	MaxSourceBytes = 8 << 10
	// maxSourcesPerStatement bounds the rows of one insert (4 bind
	// parameters each).
	maxSourcesPerStatement = 256
)

// SourceKey names a line of code: a frame's file and line.
type SourceKey struct {
	File string
	Line int
}

// SourceLine is a line of a stored snippet, shown under its frame;
// Current marks the frame's own line.
type SourceLine struct {
	Num     int
	Text    string
	Current bool
}

// WriteSourceText writes lines under a frame as plain text, as alerts and
// the Markdown export show them (a tab, ">" on the frame's own line, the
// number, " | ", the line), then link on a line of its own when there are
// lines and a link.
func WriteSourceText(b *strings.Builder, lines []SourceLine, link string) {
	for _, l := range lines {
		mark := " "
		if l.Current {
			mark = ">"
		}
		fmt.Fprintf(b, "\t%s%5d | %s\n", mark, l.Num, l.Text)
	}
	if link != "" && len(lines) > 0 {
		b.WriteString("\t" + link + "\n")
	}
}

// FirstSourceLine is the number of the first line stored for line.
func FirstSourceLine(line int) int { return max(1, line-SourceContext) }

// WriteSources stores source snippets, keeping those already stored (by
// this process or another): INSERT ... ON CONFLICT DO NOTHING (on MySQL
// INSERT IGNORE), one statement per maxSourcesPerStatement snippets.
func (s *Store) WriteSources(ctx context.Context, srcs []ErrorSource) error {
	db := s.db.WithContext(ctx)
	mysql := isMySQL(db)
	stmt := &gorm.Statement{DB: db}
	head := "INSERT INTO app_error_sources (file, line, " + stmt.Quote("lines") + ", created_at) VALUES "
	tail := " ON CONFLICT DO NOTHING"
	if mysql {
		head, tail = "INSERT IGNORE"+strings.TrimPrefix(head, "INSERT"), ""
	}
	for part := range slices.Chunk(srcs, maxSourcesPerStatement) {
		var q strings.Builder
		q.Grow(len(head) + len(part)*len("(?, ?, ?, ?), ") + len(tail))
		q.WriteString(head)
		args := make([]any, 0, 4*len(part))
		for i, src := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?)")
			args = append(args, src.File, src.Line, src.Lines, DBTime(src.CreatedAt))
		}
		q.WriteString(tail)
		if err := db.Exec(q.String(), args...).Error; err != nil {
			return fmt.Errorf("insert app_error_sources: %w", err)
		}
	}
	return nil
}

// Sources returns the stored lines of keys (at most MaxSourceBytes of
// each), in one query; keys without stored lines are left out.
func (s *Store) Sources(ctx context.Context, keys []SourceKey) (map[SourceKey]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	files := make([]string, 0, len(keys))
	lines := make([]int, 0, len(keys))
	want := make(map[SourceKey]bool, len(keys))
	for _, k := range keys {
		want[k] = true
		if !slices.Contains(files, k.File) {
			files = append(files, k.File)
		}
		if !slices.Contains(lines, k.Line) {
			lines = append(lines, k.Line)
		}
	}
	db := s.db.WithContext(ctx)
	col := (&gorm.Statement{DB: db}).Quote("lines")
	rows, err := db.Model(&ErrorSource{}).
		Select(fmt.Sprintf("file, line, substr(%s, 1, %d)", col, MaxSourceBytes)).
		Where("file IN ? AND line IN ?", files, lines).Rows()
	if err != nil {
		return nil, fmt.Errorf("errmon: read source context: %w", err)
	}
	defer rows.Close()
	out := make(map[SourceKey]string, len(keys))
	for rows.Next() {
		var k SourceKey
		var text string
		if err := rows.Scan(&k.File, &k.Line, &text); err != nil {
			return nil, fmt.Errorf("errmon: read source context: %w", err)
		}
		if want[k] {
			out[k] = text
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("errmon: read source context: %w", err)
	}
	return out, nil
}
