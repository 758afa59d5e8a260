"""README.txt: what the production holds, how to load it, and how to verify it offline."""

from __future__ import annotations

from legal_hold.review.declarations import trusted_key
from legal_hold.review.items import ReviewInput

VERIFIER = "chartledger-verify.pyz"
VERIFIER_SHA256 = "verifier_sha256"  # ReviewInput.extra: the SHA-256 of the carried verifier
DAT_PATH = "loadfiles/production.dat"
OPT_PATH = "loadfiles/production.opt"


def readme_bytes(
    review: ReviewInput, first_bates: str, last_bates: str, renderings: int, natives: int
) -> bytes:
    key = trusted_key(review)
    verifier_sha = review.extra.get(VERIFIER_SHA256) or "(not carried)"
    bates = f"{first_bates} through {last_bates}" if first_bates else "none (nothing produced)"
    text = f"""PRODUCTION: {review.matter_name} (No. {review.matter_number})
Produced by {review.producing_party} on {review.produced_at} (UTC)
with Chartledger {review.software_version}, bundle format version {review.format_version}.
Bates numbers: {bates}.
Signed checkpoint: tree size {review.checkpoint_size}, root {review.checkpoint_root},
signed by key {review.checkpoint_key_id}.
This file is UTF-8 text.


1. WHAT IS IN THIS PRODUCTION

  manifest.msgpack, manifest.sig, keys.msgpack, checkpoint.note, events.bin,
  proofs.msgpack (and since.note when an earlier checkpoint was given)
      The evidence itself, laid out as the Chartledger bundle format specifies
      (docs/BUNDLE_FORMAT.md): every event in scope, proofs to the signed checkpoint,
      the key history. The manifest lists every file below with its SHA-256 and is
      signed with the practice's signing key.
  natives/                  {natives} native files, byte for byte as stored: uploaded
                            documents, and email as .eml exactly as received.
  images/<BegBates>.pdf     {renderings} PDF renderings: one per chart timeline and message
                            thread, and a one-page slip sheet per native. Each page is
                            stamped with its Bates number.
  text/<BegBates>.txt       The exact text (UTF-8) of each timeline and thread.
  {DAT_PATH}    Concordance/Relativity DAT load file, one row per document.
  {OPT_PATH}    Opticon image cross-reference, one line per page.
  privilege/privilege_log.csv and .html
                            Items withheld as privileged (FRCP 26(b)(5)(A)), and
                            login credentials, which are never produced.
  declarations/             DRAFT FRE 902(13) and 902(14) certifications, filled with
                            the hashes, checkpoint and method; to be completed by counsel.
  scope/out_of_scope_log.csv and .html
                            Records of the people in scope whose events fall outside the
                            scope: listed, with why, instead of rendered.
  {VERIFIER}    The verifier as one file (see 3), runnable with Python, msgpack and
                            cryptography.
  index.html                A page to browse all of the above offline, in any browser.


2. LOADING INTO A REVIEW PLATFORM

  Unzip the bundle and use its folder as the volume root: every path in the load files
  is relative to it, with '\\' between folders.
  DAT: encoding UTF-8 with byte-order mark; field separator DC4 (ASCII 20, 0x14); quote
       character thorn (U+00FE, ASCII 254); newline in a value (U+00AE, ASCII 174);
       multiple values (To, CC) separated by "; "; first line holds the field names.
  OPT: ImageKey,Volume,Path,DocBreak,FolderBreak,BoxBreak,PageCount. All pages of a
       document point at the same multi-page PDF; the k-th line is page k.
  docs/REVIEW_FILES.md in the Chartledger source specifies both exactly.


3. VERIFYING THIS PRODUCTION OFFLINE, STEP BY STEP

  You need Python 3.11 or later and the bundle file exactly as you received it.

  a) Record the bundle file's SHA-256 (see 4) and compare it with the hash the producing
     party gave you; the production is recorded in their ledger with that hash.
  b) Make an isolated environment holding only the two libraries the verifier needs:
         python3 -m venv verify-env
         verify-env/bin/pip install msgpack cryptography
     (Windows: verify-env\\Scripts\\pip install msgpack cryptography)
  c) This production carries the verifier as one file, {VERIFIER} (SHA-256
     {verifier_sha}),
     listed with that hash in the signed manifest. It was made by the producing party, who
     is not the party it should be trusted by, so check it first, any one of these ways:
       - compare its SHA-256 (see 4) with the one published for Chartledger version
         {review.software_version} (docs/BUNDLE_FORMAT.md, section 1.1, in its source);
       - build it again from that source and compare: in the Chartledger source folder run
             python3 -m verify.package --digest
         (standard library only), which prints the SHA-256 the same source always gives;
       - unzip it (it is a plain ZIP file) and compare its verify/ folder with the source's
         verify/ folder, for example with: diff -r unzipped/verify SOURCE/verify
     Or use any verifier written from docs/BUNDLE_FORMAT.md instead.
  d) Copy {VERIFIER} out of the unzipped production next to the bundle file and run:
         verify-env/bin/python {VERIFIER} bundle BUNDLE_FILE --trusted-key {key}
     (Windows: verify-env\\Scripts\\python {VERIFIER} bundle BUNDLE_FILE --trusted-key ...)
     The Chartledger source's verify/ folder runs the same way as
         verify-env/bin/python -m verify bundle BUNDLE_FILE --trusted-key {key}
     It prints one OK or FAIL line per item and a summary. Exit status 0: valid;
     1: something failed (each FAIL line names the item); 2: the file could not be read.
     Compare the trusted key id with the one the producing party published through
     another channel (for example in their initial disclosures); do not take it from
     this file alone.
  e) The checkpoint above (size, root, key) fixes the whole log at the time of production.
     If an outside witness or an earlier production holds a checkpoint of the same log,
     compare them: the bundle format's consistency proof shows one grew into the other.


4. RE-HASHING A FILE BY HAND

  Any file of the production can be checked without the verifier:
      Linux:    sha256sum natives/FILE
      macOS:    shasum -a 256 natives/FILE
      Windows:  certutil -hashfile natives\\FILE SHA256
      Python:   python3 -c "import hashlib,sys;
                  print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())" natives/FILE
                (one line)
  The 64 hexadecimal digits must equal the file's SHA256 column in {DAT_PATH}, its line
  in Exhibit A of the FRE 902(14) declaration, and its entry in the signed manifest.


5. WITHHELD ITEMS

  privileged    The event is in the bundle without its content; its salted commitment still
                proves it exists and was not changed. It is listed in the privilege log, and
                its place in the timeline shows a placeholder, not its content.
  security credential
                The event holds a login secret or a hash of one (a password hash, a TOTP
                secret, a recovery or approval code's hash, a session token's hash), which a
                production never hands over. It is withheld like a privileged item (its
                status in events.bin is privileged), with the claim "security credential:
                not produced" in the manifest and the privilege log; who logged in, when and
                how stays in the login events produced.
  out of scope  The event is in the bundle (so each patient's history proves complete)
                without its content, which lies outside the matter's scope.
  disposed      The content was destroyed under the retention policy before this
                production; the event's record and proofs remain.


6. ABOUT THE PDF TEXT

  The renderings embed the fonts they draw with (subsets of DejaVu Sans and, for Chinese,
  Japanese and Korean, Droid Sans Fallback), so names and text in any of their scripts show
  as written on any computer, and can be searched and copied. A control character, or one
  neither font has, is shown as [U+XXXX], its Unicode code point. The text/ files and the
  ledger events hold the exact text.
"""
    return text.encode("utf-8")
