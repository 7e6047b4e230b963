/**
 * Demo data for `imapkit serve --demo` (as pymap's --demo-data): the user demouser/demopass,
 * about ten messages in INBOX of the shapes clients meet (plain, HTML alternative, attachment,
 * encoded subject, a thread, flags), and a few folders with special uses.
 */
import type { MailStore, SpecialUse, UserMailStore } from '../store/contract.js';

/** The demo account. */
export const DEMO_USER = 'demouser';
/** The demo password. */
export const DEMO_PASSWORD = 'demopass';

const FOLDERS: Array<[string, SpecialUse | undefined]> = [
  ['Sent', '\\Sent'],
  ['Drafts', '\\Drafts'],
  ['Trash', '\\Trash'],
  ['Archive', '\\Archive'],
  ['Junk', '\\Junk'],
  ['Projects', undefined],
  ['Projects/imapkit', undefined],
];

function day(n: number): Date {
  return new Date(Date.UTC(2024, 0, 1 + n, 9, 30, 0));
}

function message(headers: Record<string, string>, body: string): Buffer {
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`, 'utf8');
}

function basic(n: number, from: string, subject: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    From: from,
    To: 'Demo User <demouser@example.org>',
    Subject: subject,
    Date: day(n).toUTCString().replace('GMT', '+0000'),
    'Message-ID': `<demo-${n}@imapkit.example>`,
    'MIME-Version': '1.0',
    ...extra,
  };
}

/** The INBOX messages: [bytes, flags, internal date]. */
function inboxMessages(): Array<[Buffer, string[], Date]> {
  const text = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Transfer-Encoding': '8bit' };
  return [
    [message(basic(0, 'imapkit <hello@imapkit.example>', 'Welcome to imapkit', text), 'Hello!\n\nThis is a demo mailbox served by imapkit.\nTry SEARCH, FETCH, IDLE and friends.\n'), ['\\Seen'], day(0)],
    [message(basic(1, 'Alice <alice@example.org>', 'Lunch on Friday?', text), 'Are you free for lunch on Friday?\n\n-- Alice\n'), ['\\Seen', '\\Answered'], day(1)],
    [
      message(
        basic(2, 'Bob <bob@example.org>', 'Re: Lunch on Friday?', {
          ...text,
          'In-Reply-To': '<demo-1@imapkit.example>',
          References: '<demo-1@imapkit.example>',
        }),
        'Count me in.\n\n> Are you free for lunch on Friday?\n',
      ),
      [],
      day(2),
    ],
    [
      message(
        basic(3, 'Newsletter <news@example.com>', 'This week in mail', { 'Content-Type': 'multipart/alternative; boundary="alt-3"' }),
        [
          '--alt-3',
          'Content-Type: text/plain; charset=us-ascii',
          '',
          'Plain text version of the newsletter.',
          '--alt-3',
          'Content-Type: text/html; charset=us-ascii',
          '',
          '<html><body><h1>This week in mail</h1><p>HTML version.</p></body></html>',
          '--alt-3--',
          '',
        ].join('\n'),
      ),
      [],
      day(3),
    ],
    [
      message(
        basic(4, 'Carol <carol@example.org>', 'Report attached', { 'Content-Type': 'multipart/mixed; boundary="mix-4"' }),
        [
          '--mix-4',
          'Content-Type: text/plain; charset=us-ascii',
          '',
          'The report is attached.',
          '--mix-4',
          'Content-Type: text/csv; name="report.csv"',
          'Content-Disposition: attachment; filename="report.csv"',
          'Content-Transfer-Encoding: base64',
          '',
          Buffer.from('month,messages\njanuary,120\nfebruary,98\n').toString('base64'),
          '--mix-4--',
          '',
        ].join('\n'),
      ),
      ['\\Flagged'],
      day(4),
    ],
    [message(basic(5, '=?UTF-8?B?SsO8cmdlbg==?= <juergen@example.de>', '=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=', text), 'Viele Grüße aus München!\n'), [], day(5)],
    [message(basic(6, 'Dana <dana@example.org>', 'Meeting notes', text), 'Notes from today:\n- ship the server\n- write the docs\n'), ['\\Seen', '$Important'], day(6)],
    [message(basic(7, 'Alerts <noreply@example.net>', 'Your build passed', text), 'Build #42 passed.\n'), ['\\Seen'], day(7)],
    [message(basic(8, 'Eve <eve@example.org>', 'Draft ideas', text), 'Some ideas for the next release.\n'), ['\\Draft'], day(8)],
    [message(basic(9, 'Frank <frank@example.org>', 'Old thread cleanup', text), 'Feel free to delete this one.\n'), ['\\Seen', '\\Deleted'], day(9)],
  ];
}

async function ensureFolder(store: UserMailStore, name: string, use: SpecialUse | undefined): Promise<void> {
  try {
    await store.createMailbox(name, use);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ALREADYEXISTS') throw err;
  }
  await store.setSubscribed(name, true);
}

/** Create the demo user (if missing) and fill an empty INBOX with the demo messages. */
export async function seedDemo(store: MailStore): Promise<void> {
  const users = store.users;
  if (!users) throw new Error('the demo needs a store with its own user database');
  if (!(await users.listUsers()).includes(DEMO_USER)) await users.addUser(DEMO_USER, DEMO_PASSWORD);
  const mail = await store.openUser(DEMO_USER);
  try {
    await mail.setSubscribed('INBOX', true);
    for (const [name, use] of FOLDERS) await ensureFolder(mail, name, use);
    if ((await mail.status('INBOX')).messages === 0) {
      const msgs = inboxMessages().map(([data, flags, internalDate]) => ({ data, flags, internalDate }));
      await mail.append('INBOX', msgs);
      await mail.append('Sent', [
        {
          data: message(basic(10, 'Demo User <demouser@example.org>', 'Re: Lunch on Friday?', { 'Content-Type': 'text/plain; charset=us-ascii' }), 'See you there.\n'),
          flags: ['\\Seen'],
          internalDate: day(2),
        },
      ]);
    }
  } finally {
    await mail.close();
  }
}
