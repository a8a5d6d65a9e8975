package dashboard

import (
	"fmt"
	"html/template"
	"io/fs"
	"time"
)

// templateFuncs are the functions the pages' templates call.
var templateFuncs = template.FuncMap{
	"ago":       agoText,
	"utc":       func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":       func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":       formatCount,
	"plural":    pluralize,
	"breakable": breakable,
	"int64":     func(n int) int64 { return int64(n) },
}

// pageNames are the dashboard's pages: each is layout.html with NAME.html.
var pageNames = []string{"list", "detail", "notfound", "confirm"}

// parsePages parses every page of fsys and reads its style sheet.
func parsePages(fsys fs.FS) (map[string]*template.Template, []byte, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(fsys, "layout.html", name+".html")
		if err != nil {
			return nil, nil, fmt.Errorf("dashboard: page %s: %w", name, err)
		}
		pages[name] = t
	}
	css, err := fs.ReadFile(fsys, "dashboard.css")
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard: style sheet: %w", err)
	}
	return pages, css, nil
}
