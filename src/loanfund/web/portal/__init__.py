"""The enterprise portal: the programme, applying, the confirmation and the status of an application.

Public pages (no key), rate-limited per address like the public API, in Chinese by default. Every page
works without JavaScript; `static/portal.js` only checks the credit code and shows amounts in 万元 as the
applicant types. Handlers call the same service functions and schemas as `applications/router.py`.
"""
