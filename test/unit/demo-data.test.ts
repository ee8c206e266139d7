import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeQuotedPrintable, htmlToText, messageText, stripHeaders } from '../../examples/build/mime';
import {
  addressId,
  buildPartyTask,
  cutPassages,
  PARTY_FRACTIONS,
  PASSAGE_WORDS,
  passageKey,
  prepareParty,
  splitPartyAddresses,
  splitSentences,
  wordCount,
} from '../../examples/build/party';
import { cleanSotuText, loadSotu, prepareSotu, splitSotu, toTxt, type SotuAddress } from '../../examples/build/sotu';
import { SPLITS, splitOf, type SplitName } from '../../examples/build/split';
import {
  buildSpamRecords,
  duplicateKey,
  labelOfGroup,
  loadSpamAssassin,
  prepareSpam,
  readJsonl,
  splitSpamRecords,
  type RawEmail,
  type SpamRecord,
} from '../../examples/build/spam';
import { silentLog } from '../../examples/build/common';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vtrans-demo-data-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Deterministic shuffle (mulberry32), so an "other order" is the same on every run. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Lines a mail server or client writes, which must never reach the model. */
const HEADER_START =
  /^(?:Received|Return-Path|Message-Id|Delivered-To|X-[\w-]+|MIME-Version|Content-Type|Content-Transfer-Encoding|From|To|Cc|Subject|Date|Reply-To|Sender|Precedence|List-[\w-]+|Errors-To|In-Reply-To|References):/im;

const HANDCRAFTED = [
  'From spammer@example.com  Tue Aug  6 11:51:02 2002',
  'Return-Path: <spammer@example.com>',
  'Delivered-To: victim@example.org',
  'Received: from mail.example.com (mail.example.com [10.0.0.1])',
  '\tby mx.example.org (Postfix) with ESMTP id 123ABC',
  '\tfor <victim@example.org>; Tue,  6 Aug 2002 06:48:09 -0400 (EDT)',
  'Message-Id: <1028311679.886@example.com>',
  'X-Spam-Status: Yes, hits=12.3',
  'From: "Lucky Winner" <spammer@example.com>',
  'To: victim@example.org',
  'Subject: You have WON',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="OUTER"',
  '',
  'This is a multi-part message in MIME format.',
  '',
  '--OUTER',
  'Content-Type: multipart/alternative;',
  '\tboundary="INNER"',
  '',
  '--INNER',
  'Content-Type: text/plain; charset="utf-8"',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Dear friend, claim your caf=C3=A9 voucher today. This line is soft-=',
  'wrapped.',
  '',
  '--INNER',
  'Content-Type: text/html; charset="utf-8"',
  '',
  '<html><body><p>Dear friend, claim your caf&eacute; voucher today.</p></body></html>',
  '--INNER--',
  '',
  '--OUTER',
  'Content-Type: text/plain; charset="iso-8859-1"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('Second part: na\u00efve r\u00e9sum\u00e9', 'latin1').toString('base64'),
  '',
  '--OUTER',
  'Content-Type: application/octet-stream; name="prize.exe"',
  'Content-Transfer-Encoding: base64',
  '',
  'TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  '',
  '--OUTER',
  'Content-Type: message/rfc822',
  '',
  'Received: from inner.example.com by relay.example.com',
  'From: someone@example.net',
  'Subject: forwarded',
  '',
  'Forwarded body text.',
  '--OUTER--',
  '',
].join('\r\n');

describe('RFC822 header stripping and MIME text', () => {
  it('stripHeaders removes everything up to the first blank line', () => {
    const body = stripHeaders(HANDCRAFTED);
    assert.ok(body.startsWith('This is a multi-part message'), body.slice(0, 60));
    assert.doesNotMatch(body.split('\n').slice(0, 3).join('\n'), /Received:|Return-Path:|Message-Id:/);
    assert.equal(stripHeaders('Subject: only headers\nX-A: b'), '');
    assert.equal(stripHeaders('From: a\n   \nbody'), 'body', 'a whitespace-only line ends the headers');
  });

  it('messageText keeps the message and drops servers, attachments and nested headers', () => {
    const text = messageText(HANDCRAFTED);
    assert.match(text, /Dear friend, claim your café voucher today\. This line is soft-wrapped\./);
    assert.match(text, /Second part: naïve résumé/);
    assert.match(text, /Forwarded body text\./);
    assert.doesNotMatch(text, HEADER_START);
    for (const leak of [
      'mx.example.org',
      'Postfix',
      '1028311679',
      'X-Spam',
      'hits=12.3',
      'prize.exe',
      'TVqQAAMA',
      'inner.example.com',
      'You have WON',
      '<p>',
    ]) {
      assert.ok(!text.includes(leak), `"${leak}" leaked into: ${text}`);
    }
    assert.equal(text.split('\n').filter((l) => /Dear friend/.test(l)).length, 1, 'multipart/alternative gives one version');
  });

  it('removes header blocks quoted inside a body, HTML tags and long encoded lines', () => {
    const raw = [
      'Subject: fwd',
      'Content-Type: text/html',
      '',
      'See below.',
      '-----Original Message-----',
      'From: Bob <bob@example.com>',
      'Sent: Monday',
      'Received: from a.example.com',
      '    by b.example.com',
      'Real content <b>bold</b>&nbsp;&amp; more',
      'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3',
    ].join('\n');
    const text = messageText(raw);
    assert.doesNotMatch(text, HEADER_START);
    assert.ok(!text.includes('b.example.com'));
    assert.match(text, /Real content bold & more/);
    assert.ok(!text.includes('QUJDREVG'));
  });

  it('decodes quoted-printable and converts HTML', () => {
    assert.equal(Buffer.from(decodeQuotedPrintable('a=3Db=\nc =E2=82=AC')).toString('utf8'), 'a=bc €');
    const t = htmlToText('<style>p{}</style><p>Hello&nbsp;<a href="http://x">world</a></p><!-- hidden --><br>&#8364;5');
    assert.equal(t.replace(/\s+/g, ' ').trim(), 'Hello world €5');
    // an unclosed comment or head must not swallow the document
    assert.match(htmlToText('<head><title>t</title><body>kept text'), /kept text/);
  });

  it('truncates very long bodies at a word boundary', () => {
    const raw = `Subject: x\n\n${'word '.repeat(2000)}`;
    const text = messageText(raw, { maxChars: 100 });
    assert.ok(text.length <= 100 && text.length > 80, String(text.length));
    assert.ok(text.endsWith('word'));
  });
});

describe('SpamAssassin demo split', () => {
  const raw: RawEmail[] = loadSpamAssassin();
  const { records, dropped } = buildSpamRecords(raw);
  const splits = splitSpamRecords(records);

  it('labels by group: spam-* is spam, *-ham-* is ham', () => {
    assert.equal(raw.length, 6046);
    assert.equal(labelOfGroup('spam-2'), 'spam');
    assert.equal(labelOfGroup('easy-ham-1'), 'ham');
    assert.equal(labelOfGroup('hard-ham-1'), 'ham');
    assert.throws(() => labelOfGroup('unknown'), /unknown SpamAssassin group/);
    assert.equal(raw.filter((m) => labelOfGroup(m.group) === 'spam').length, 1896);
  });

  it('every split is non-empty, holds both labels, and has roughly its share', () => {
    const n = records.length;
    assert.ok(n > 5000, `${n} records`);
    const share: Record<SplitName, number> = { train: 0.8, dev: 0.1, test: 0.1 };
    for (const s of SPLITS) {
      const labels = new Set(splits[s].map((r) => r.label));
      assert.deepEqual([...labels].sort(), ['ham', 'spam'], s);
      assert.ok(Math.abs(splits[s].length / n - share[s]) < 0.03, `${s}: ${splits[s].length}/${n}`);
    }
    assert.equal(splits.train.length + splits.dev.length + splits.test.length, n);
    assert.ok(dropped.duplicates > 0 && dropped.empty > 0);
  });

  it('is disjoint: no id, body or near-duplicate body in two splits', () => {
    const owner = new Map<string, SplitName>();
    for (const s of SPLITS) {
      for (const r of splits[s]) {
        for (const key of [`id:${r.id}`, `text:${r.text}`, `dup:${duplicateKey(r.text)}`]) {
          const prev = owner.get(key);
          assert.ok(prev === undefined, `${key.slice(0, 80)} in ${prev} and ${s}`);
          owner.set(key, s);
        }
      }
    }
  });

  it('is deterministic and independent of input order', () => {
    const again = buildSpamRecords(shuffled(raw, 7));
    const splitsAgain = splitSpamRecords(shuffled(again.records, 11));
    const assignment = (sp: Record<SplitName, SpamRecord[]>): string[] =>
      SPLITS.flatMap((s) => sp[s].map((r) => `${s}\t${r.id}\t${r.label}\t${r.text}`));
    assert.deepEqual(assignment(splitsAgain), assignment(splits));
    // the split of an id depends on nothing else
    for (const r of splits.dev.slice(0, 20)) assert.equal(splitOf(r.id, { train: 0.8, dev: 0.1 }, 'vtrans-spam-v1:'), 'dev');
  });

  it('no text keeps a header line, and bodies are non-empty and bounded', () => {
    for (const r of records) {
      assert.ok(r.text.length > 0 && r.text.length <= 4000, r.id);
      const m = HEADER_START.exec(r.text);
      assert.equal(m, null, `${r.id}: ${m?.[0]}`);
      assert.ok(!/^From \S+@\S+ /m.test(r.text), `${r.id}: mbox separator`);
    }
  });

  it('prepareSpam writes jsonl splits, a manifest and a tokenizer, and is cached', async () => {
    const out = path.join(tmp, 'spam');
    const first = await prepareSpam(out, { vocabSize: 3000, log: silentLog });
    assert.equal(first.cached, false);
    for (const s of SPLITS) {
      const rows = readJsonl(path.join(out, 'data', `${s}.jsonl`));
      assert.equal(rows.length, splits[s].length, s);
      assert.deepEqual(Object.keys(rows[0]), ['text', 'label', 'id']);
      assert.deepEqual(
        rows.map((r) => r.id),
        splits[s].map((r) => r.id),
      );
      assert.equal(first.manifest.counts[s].total, rows.length);
    }
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
      assert.ok(fs.existsSync(path.join(out, 'tokenizer', f)), f);
    assert.equal(first.manifest.tokenizer.vocabSize, 3000);
    const t0 = Date.now();
    const second = await prepareSpam(out, { vocabSize: 3000, log: silentLog });
    assert.equal(second.cached, true);
    assert.ok(Date.now() - t0 < 2000);
    assert.deepEqual(second.manifest, first.manifest);
    const third = await prepareSpam(out, { vocabSize: 2500, log: silentLog });
    assert.equal(third.cached, false, 'changed options rebuild');
    assert.equal(third.manifest.tokenizer.vocabSize, 2500);
  });
});

describe('State of the Union demo split', () => {
  const addresses = loadSotu();
  const splits = splitSotu(addresses);

  it('holds out the latest years: test after dev after train', () => {
    assert.equal(addresses.length, 233);
    for (const s of SPLITS) assert.ok(splits[s].length > 0, s);
    const years = (s: SplitName): number[] => splits[s].map((a) => a.year);
    assert.ok(Math.min(...years('test')) > Math.max(...years('dev')));
    assert.ok(Math.min(...years('dev')) > Math.max(...years('train')));
    assert.equal(splits.train.length + splits.dev.length + splits.test.length, addresses.length);
    assert.ok(Math.abs(splits.test.length - 0.08 * 233) <= 2, String(splits.test.length));
    assert.ok(Math.abs(splits.dev.length - 0.08 * 233) <= 2, String(splits.dev.length));
  });

  it('does not depend on input order and never divides a year', () => {
    const again = splitSotu(shuffled(addresses, 3));
    for (const s of SPLITS)
      assert.deepEqual(
        again[s].map((a) => `${a.year} ${a.name}`),
        splits[s].map((a) => `${a.year} ${a.name}`),
      );
    const mk = (year: number, name: string): SotuAddress => ({ year, name, party: 'none', text: `${name} ${year}` });
    // 10 addresses, the last two in one year: a cut inside that year moves to the year's start
    const synthetic = [...Array.from({ length: 8 }, (_, i) => mk(1900 + i, `P${i}`)), mk(1908, 'A'), mk(1908, 'B')];
    const sp = splitSotu(synthetic, { testFraction: 0.1, devFraction: 0.1 });
    assert.deepEqual(
      sp.test.map((a) => a.name),
      ['A', 'B'],
    );
    assert.deepEqual(
      sp.dev.map((a) => a.year),
      [1907],
    );
  });

  it('cleans stage directions and writes one address per block', () => {
    assert.equal(
      cleanSotuText('Thank you. (Applause.) Madam Speaker—(applause)—no one.\u0002 End'),
      'Thank you. Madam Speaker—no one. End',
    );
    const txt = toTxt(splits.test);
    const blocks = txt.trimEnd().split('\n\n');
    assert.equal(blocks.length, splits.test.length);
    for (const b of blocks) assert.ok(b.length > 1000 && !b.includes('\n'));
    assert.ok(!/\(applause\.?\)/i.test(txt));
  });

  it('prepareSotu writes txt splits, a manifest of years and a tokenizer, and is cached', async () => {
    const out = path.join(tmp, 'sotu');
    const first = await prepareSotu(out, { vocabSize: 2000, log: silentLog });
    assert.equal(first.cached, false);
    const m = first.manifest;
    assert.deepEqual(m.splits.test.years, [...new Set(splits.test.map((a) => a.year))]);
    assert.equal(m.addresses.length, 233);
    assert.ok(m.addresses.filter((a) => a.split === 'test').every((a) => a.year > m.splits.dev.lastYear));
    for (const s of SPLITS) {
      const blocks = fs
        .readFileSync(path.join(out, 'data', `${s}.txt`), 'utf8')
        .trimEnd()
        .split('\n\n');
      assert.equal(blocks.length, m.splits[s].addresses);
    }
    assert.equal(m.tokenizer.vocabSize, 2000);
    assert.equal((await prepareSotu(out, { vocabSize: 2000, log: silentLog })).cached, true);
  });
});

describe('State of the Union party task (passages by party, split by address)', () => {
  const addresses = loadSotu();
  const task = buildPartyTask(addresses);

  it('splits sentences at . ! ? but not after titles, abbreviations or initials; joining them gives the text', () => {
    const text =
      'Mr. Speaker, Mr. President: I thank you. The U.S. Government spent $3.5 million in St. Louis! Did John F. Kennedy say "Ask not"? (He did.) "Yes." No. 3 is done.';
    assert.deepEqual(splitSentences(text), [
      'Mr. Speaker, Mr. President: I thank you.',
      'The U.S. Government spent $3.5 million in St. Louis!',
      'Did John F. Kennedy say "Ask not"?',
      '(He did.)',
      '"Yes."',
      'No. 3 is done.',
    ]);
    for (const a of addresses.slice(0, 40)) {
      const t = cleanSotuText(a.text);
      assert.equal(splitSentences(t).join(' '), t, addressId(a));
    }
  });

  it('passages are runs of whole sentences of 60 to 120 words (by default), in order, covering the address', () => {
    const s = (n: number) => `The ${Array.from({ length: n - 2 }, () => 'word').join(' ')} end.`;
    const w4080 = { minWords: 40, maxWords: 80 };
    // 30 + 30 words: the second sentence joins (under 40); 25 more would make 85 > 80: a new passage of
    // 25 + 50; the last 10 words are under 40 and join the passage before
    assert.deepEqual(cutPassages([s(30), s(30), s(25), s(50), s(10)].join(' '), w4080).map(wordCount), [60, 85]);
    // a sentence longer than the room left starts a new passage; one over maxWords is a passage alone
    assert.deepEqual(cutPassages([s(45), s(100), s(41)].join(' '), w4080).map(wordCount), [45, 100, 41]);
    // a last passage under 40 words is joined to the one before
    assert.deepEqual(cutPassages([s(50), s(35), s(20)].join(' '), w4080).map(wordCount), [50, 55]);
    assert.deepEqual(cutPassages(s(12)).map(wordCount), [12], 'a short address is one passage');
    // the defaults, 60 and 120: 70 + 40 stays within 120; 30 more would not
    assert.deepEqual(cutPassages([s(70), s(40), s(30), s(40)].join(' ')).map(wordCount), [110, 70]);
    for (const a of addresses.filter((x) => x.year >= 1930).slice(0, 20)) {
      const t = cleanSotuText(a.text);
      const ps = cutPassages(t);
      assert.equal(ps.join(' '), t, addressId(a));
      for (const p of ps) {
        const n = wordCount(p);
        assert.ok(n >= PASSAGE_WORDS.min, `${addressId(a)}: ${n} words`);
        // beyond maxWords only through a sentence longer than the room left, or the joined tail of the address
        const long = splitSentences(p).some((x) => wordCount(x) > PASSAGE_WORDS.max - PASSAGE_WORDS.min);
        assert.ok(n <= PASSAGE_WORDS.max || long || p === ps[ps.length - 1], `${addressId(a)}: ${n} words`);
      }
    }
  });

  it('Democratic and Republican addresses only, each in exactly one split, stratified by party', () => {
    const split = task.splits;
    const owner = new Map<string, SplitName>();
    for (const sp of SPLITS) {
      for (const a of split[sp]) {
        assert.ok(a.party === 'Democratic' || a.party === 'Republican', `${addressId(a)}: ${a.party}`);
        assert.equal(owner.get(addressId(a)), undefined, `${addressId(a)} in two splits`);
        owner.set(addressId(a), sp);
      }
    }
    for (const party of ['Democratic', 'Republican']) {
      const n = addresses.filter((a) => a.party === party).length;
      const nTrain = Math.round(n * PARTY_FRACTIONS.train);
      const nDev = Math.round(n * PARTY_FRACTIONS.dev);
      assert.equal(split.train.filter((a) => a.party === party).length, nTrain, party);
      assert.equal(split.dev.filter((a) => a.party === party).length, nDev, party);
      assert.equal(split.test.filter((a) => a.party === party).length, n - nTrain - nDev, party);
    }
    assert.equal(owner.size, 182);
  });

  it('no address and no passage on two sides; every split holds both labels; test has at least 2,000 passages', () => {
    const owner = new Map<string, SplitName>();
    const keys = new Map<string, SplitName>();
    for (const sp of SPLITS) {
      const recs = task.records[sp];
      for (const r of recs) {
        const address = r.id.slice(0, r.id.indexOf('/'));
        const prev = owner.get(address);
        assert.ok(prev === undefined || prev === sp, `${address} in ${prev} and ${sp}`);
        owner.set(address, sp);
        const k = keys.get(passageKey(r.text));
        assert.ok(k === undefined || k === sp, `${r.id}: the same passage in ${k} and ${sp}`);
        keys.set(passageKey(r.text), sp);
      }
      const dem = recs.filter((r) => r.label === 'Democratic').length;
      assert.ok(dem / recs.length > 0.4 && dem / recs.length < 0.6, `${sp}: ${dem}/${recs.length} Democratic`);
      assert.equal(new Set(recs.map((r) => r.id)).size, recs.length, `${sp}: ids are unique`);
    }
    assert.ok(task.records.test.length >= 2000, String(task.records.test.length));
    assert.ok(task.records.dev.length >= 2000, String(task.records.dev.length));
    assert.ok(task.records.train.length > 3 * task.records.test.length);
    assert.ok(task.dropped.dev > 0, 'repeated paragraphs are dropped from dev');
  });

  it('is deterministic and independent of the input order', () => {
    const again = buildPartyTask(shuffled(addresses, 5));
    const flat = (t: typeof task) => SPLITS.flatMap((sp) => t.records[sp].map((r) => `${sp}\t${r.id}\t${r.label}\t${r.text}`));
    assert.deepEqual(flat(again), flat(task));
    assert.deepEqual(
      SPLITS.map((sp) => splitPartyAddresses(shuffled(addresses, 9))[sp].map(addressId)),
      SPLITS.map((sp) => task.splits[sp].map(addressId)),
    );
  });

  it('prepareParty writes jsonl splits and a manifest with the counts, and is cached', async () => {
    const out = path.join(tmp, 'party');
    const first = await prepareParty(out, { log: silentLog });
    assert.equal(first.cached, false);
    for (const sp of SPLITS) {
      const rows = readJsonl(path.join(out, 'data', `${sp}.jsonl`));
      assert.deepEqual(
        rows.map((r) => r.id),
        task.records[sp].map((r) => r.id),
      );
      assert.deepEqual(Object.keys(rows[0]), ['text', 'label', 'id']);
      const m = first.manifest.splits[sp];
      assert.equal(m.passages, rows.length);
      assert.equal(m.labels.Democratic + m.labels.Republican, rows.length);
      assert.equal(m.addresses, task.splits[sp].length);
    }
    assert.equal(first.manifest.addresses.length, 182);
    assert.equal(
      first.manifest.addresses.reduce((n, a) => n + a.passages, 0),
      SPLITS.reduce((n, sp) => n + task.records[sp].length, 0),
    );
    const second = await prepareParty(out, { log: silentLog });
    assert.equal(second.cached, true);
    assert.deepEqual(second.manifest, first.manifest);
    const third = await prepareParty(out, { minWords: 30, maxWords: 60, log: silentLog });
    assert.equal(third.cached, false, 'changed options rebuild');
    assert.ok(third.manifest.splits.test.passages > first.manifest.splits.test.passages);
  });
});
