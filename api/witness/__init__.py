"""A C2SP tlog-witness (docs/WITNESS.md): ``chartledger witness serve``.

Runs anywhere apart from the practice (an attorney's office, a second practice, a small VM). It
keeps the latest checkpoint of each log it follows and cosigns only consistent extensions, so a
practice that rolls its log back or shows a fork is caught against it.
"""
