// Drives trainhub's /xapi/statements with @xapi/xapi, as an online learning platform would.
// Usage: node send.mjs <step> <endpoint> <user> <token> [args…]; prints one JSON line.
//   learn <homePage> <account> <minutes> <courseId>   completed, with result.duration
//   attend <homePage> <account> <minutes>             attended (no id: the hub assigns one)
//   cmi5 <homePage> <account> <minutes>               completed + passed of one cmi5 session
//   void <statementId>                                voids a statement
//   get <statementId>                                 reads a statement back
//   page <homePage> <account> <limit>                 every statement of an account, page by page
//   voided <statementId>                              reads a voided statement
//   about                                             the LRS's versions
//   attach <homePage> <account> <text>                a statement with a text attachment
import XAPI from "@xapi/xapi";

const [step, endpoint, user, token, ...args] = process.argv.slice(2);
const xapi = new XAPI({ endpoint, auth: XAPI.toBasicAuth(user, token), version: "1.0.3" });
const verb = (name) => ({ id: `http://adlnet.gov/expapi/verbs/${name}`, display: { "en-US": name } });
const actor = (homePage, name) => ({ objectType: "Agent", account: { homePage, name } });
const activity = (id, title) => ({
  objectType: "Activity",
  id,
  definition: { name: { "zh-CN": title } },
});
const duration = (minutes) => `PT${minutes}M`;

async function run() {
  switch (step) {
    case "learn": {
      const [homePage, account, minutes, course] = args;
      const id = crypto.randomUUID();
      await xapi.sendStatement({
        statement: {
          id,
          actor: actor(homePage, account),
          verb: verb("completed"),
          object: activity(course, "学习贯彻党的二十届四中全会精神网络专题"),
          result: { completion: true, duration: duration(minutes) },
          timestamp: new Date().toISOString(),
        },
      });
      return { id };
    }
    case "attend": {
      const [homePage, account, minutes] = args;
      const response = await xapi.sendStatement({
        statement: {
          actor: actor(homePage, account),
          verb: verb("attended"),
          object: activity("https://mooc.example.cn/live/2026-03", "网络直播课"),
          result: { duration: duration(minutes) },
          timestamp: new Date().toISOString(),
        },
      });
      return { ids: response.data };
    }
    case "cmi5": {
      const [homePage, account, minutes] = args;
      const registration = crypto.randomUUID();
      const context = {
        registration,
        contextActivities: { category: [{ id: "https://w3id.org/xapi/cmi5/context/categories/cmi5" }] },
      };
      const au = activity("https://mooc.example.cn/cmi5/au-7", "党纪学习教育 cmi5 课程");
      const ids = [];
      for (const name of ["completed", "passed"]) {
        const id = crypto.randomUUID();
        await xapi.sendStatement({
          statement: {
            id,
            actor: actor(homePage, account),
            verb: verb(name),
            object: au,
            result: { duration: duration(minutes), score: { scaled: 0.9 } },
            context,
            timestamp: new Date().toISOString(),
          },
        });
        ids.push(id);
      }
      return { ids };
    }
    case "void": {
      const [statementId] = args;
      const response = await xapi.voidStatement({
        actor: { objectType: "Agent", mbox: "mailto:lrs-admin@mooc.example.cn" },
        statementId,
      });
      return { ids: response.data };
    }
    case "get": {
      const [statementId] = args;
      const response = await xapi.getStatement({ statementId });
      return { statement: response.data };
    }
    case "page": {
      const [homePage, account, limit] = args;
      let response = await xapi.getStatements({ agent: actor(homePage, account), limit: Number(limit) });
      const ids = [];
      let pages = 0;
      for (;;) {
        pages += 1;
        ids.push(...response.data.statements.map((s) => s.id));
        if (!response.data.more) break;
        response = await xapi.getMoreStatements({ more: response.data.more });
      }
      return { ids, pages };
    }
    case "voided": {
      const [voidedStatementId] = args;
      const response = await xapi.getVoidedStatement({ voidedStatementId });
      return { statement: response.data };
    }
    case "about": {
      const response = await xapi.getAbout();
      return { about: response.data };
    }
    case "attach": {
      const [homePage, account, text] = args;
      const bytes = new TextEncoder().encode(text);
      const digest = await crypto.subtle.digest("SHA-256", bytes);
      const sha2 = Buffer.from(digest).toString("hex");
      const id = crypto.randomUUID();
      await xapi.sendStatement({
        statement: {
          id,
          actor: actor(homePage, account),
          verb: verb("experienced"),
          object: activity("https://mooc.example.cn/notes/1", "学习笔记"),
          attachments: [{
            usageType: "https://mooc.example.cn/usage/notes",
            display: { "zh-CN": "笔记" },
            contentType: "text/plain",
            length: bytes.length,
            sha2,
          }],
        },
        attachments: [bytes.buffer],
      });
      const back = await xapi.getStatement({ statementId: id, attachments: true });
      return { id, sha2, back: typeof back.data === "string" ? back.data : JSON.stringify(back.data) };
    }
    default:
      throw new Error(`unknown step ${step}`);
  }
}

run()
  .then((result) => console.log(JSON.stringify({ ok: true, ...result })))
  .catch((e) =>
    console.log(JSON.stringify({ ok: false, status: e.response?.status ?? null, error: String(e.message ?? e), body: e.response?.data ?? null, url: e.config?.url ?? null })),
  );
