/**
 * A typedoc plugin (typedoc.json `plugin`) for the guides under docs/: their
 * headings are often code (`### \`dashboard\``), and their links use the
 * anchors GitHub gives such headings (`cli.md#dashboard`). Typedoc builds a
 * heading's anchor from its text tokens only, so a heading that is all code
 * got `_` and every link to it was reported as broken. This markdown-it rule
 * splits each code span of a heading into `<code>`, its text, `</code>`: the
 * page looks the same, and the anchor is the one GitHub makes. It also
 * names each guide by its first heading rather than its file name.
 */
import { Application, Converter } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DOCUMENT, (_context, document) => {
    const text = document.content.map((part) => part.text).join('');
    const heading = /^# (.+)$/m.exec(text);
    if (heading) document.name = heading[1].replaceAll('`', '').trim();
  });
  app.on(Application.EVENT_BOOTSTRAP_END, () => {
    const previous = app.options.getValue('markdownItLoader');
    app.options.setValue('markdownItLoader', (parser) => {
      previous(parser);
      parser.core.ruler.push('heading_code_as_text', (state) => {
        state.tokens.forEach((token, i) => {
          const inline = state.tokens[i + 1];
          if (token.type !== 'heading_open' || inline?.type !== 'inline' || !inline.children) return;
          inline.children = inline.children.flatMap((child) => {
            if (child.type !== 'code_inline') return [child];
            const open = new state.Token('html_inline', '', 0);
            open.content = '<code>';
            const text = new state.Token('text', '', 0);
            text.content = child.content;
            const close = new state.Token('html_inline', '', 0);
            close.content = '</code>';
            return [open, text, close];
          });
        });
      });
    });
  });
}
