"""The web UI at / in headless Chromium (Debian's chromium + chromium-driver, selenium from PyPI).

Usage: test_webui.py URL API_KEY SCREENSHOT EXPECT_WORKERS

Checks, each with its own message on failure: the page loads and names the model; a message typed into the
composer streams a reply (the page renders it delta by delta, at least two, then the stats line shows TTFT,
tok/s and MTP); the cluster panel lists the ranks and, under a topology, each worker's share of rows; the
heat map draws every MoE layer with routed tokens; a synthetic tool-call stream renders as a tool-call card
with its arguments, and reasoning collapses once content arrives. Writes a screenshot.
"""
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

url, key, shot, expect_workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise SystemExit(f"webui: FAILED: {what}")
    checks += 1


opts = Options()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, 60, poll_frequency=0.05)
try:
    driver.get(url + "/")
    check(driver.title == "Switchyard", f"page title is {driver.title!r}")
    # The key lives in localStorage; set it and reload, as a user does once.
    driver.execute_script("localStorage.setItem('switchyard.apikey', arguments[0]); localStorage.setItem('switchyard.maxtokens', '48');", key)
    driver.get(url + "/")
    wait.until(lambda d: d.find_element(By.ID, "health").text == "live")
    check(driver.find_element(By.ID, "model").text not in ("", "…"), "the header names the model")

    box = driver.find_element(By.ID, "prompt")
    box.send_keys("Tell me about expert parallelism.")
    box.send_keys(Keys.ENTER)
    # Streaming: the reply grows over several reads before the stats line appears.
    lengths = []
    t0 = time.time()
    while time.time() - t0 < 60:
        n = driver.execute_script(
            "const m = document.querySelector('.msg.assistant'); if (!m) return -1;"
            "return m.querySelector('.reasoning-text').textContent.length + m.querySelector('.content').textContent.length;")
        done = driver.execute_script("const s = document.querySelector('.msg.assistant .stats'); return !!(s && (s.dataset.done || s.classList.contains('error')));")
        lengths.append(n)
        if done:
            break
        time.sleep(0.02)
    check(done and "error" not in driver.find_element(By.CSS_SELECTOR, ".msg.assistant .stats").get_attribute("class"),
          f"the reply finished within 60 s (stats: {driver.find_element(By.CSS_SELECTOR, '.msg.assistant .stats').text!r})")
    grew = sorted(set(x for x in lengths if x > 0))
    # The page counts the deltas it rendered one by one; polling alone can miss a fast reply's steps.
    updates = int(driver.find_element(By.CSS_SELECTOR, ".msg.assistant").get_attribute("data-updates") or 0)
    check(updates >= 2, f"the reply was rendered in pieces as it streamed ({updates} updates; lengths polled: {grew})")
    stats = driver.find_element(By.CSS_SELECTOR, ".msg.assistant .stats").text
    check("TTFT" in stats and "tok/s" in stats and "MTP" in stats, f"the stats line has TTFT, tok/s and MTP: {stats!r}")
    print(f"webui: reply rendered in {updates} streamed updates ({len(grew)} seen by polling); stats: {stats}")

    # The cluster panel refreshes every 1.5 s: wait for the finished request to show there.
    wait.until(lambda d: d.find_element(By.ID, "served").text.startswith("1 request,"))
    check(int(driver.find_element(By.ID, "heatmap").get_attribute("data-max") or 0) > 0, "the heat map has counts")
    ranks = driver.find_elements(By.CSS_SELECTOR, "#ranks tbody tr")
    check(len(ranks) == max(1, 1 + expect_workers), f"ranks table has {len(ranks)} rows")
    workers = driver.find_elements(By.CSS_SELECTOR, "#workers tbody tr")
    check(len(workers) == expect_workers, f"workers table has {len(workers)} rows, expected {expect_workers}")
    if expect_workers:
        # One script reads the whole column: the panel rebuilds its tables every 1.5 s, and row elements
        # fetched one by one can go stale between the reads (seen once in CI).
        rows = [int(x) for x in driver.execute_script(
            "return [...document.querySelectorAll('#workers tbody tr')].map(r => r.cells[1].textContent)")]
        check(sum(rows) > 0, f"workers received rows: {rows}")
        print(f"webui: worker rows {rows}")
    hm = driver.find_element(By.ID, "heatmap")
    print(f"webui: heat map {hm.get_attribute('data-layers')} layers x {hm.get_attribute('data-experts')} experts, "
          f"max count {hm.get_attribute('data-max')}")
    check(int(hm.get_attribute("data-layers")) > 0, "the heat map has layers")
    served = driver.find_element(By.ID, "served").text
    check("MTP position 1:" in served, f"served totals show MTP per draft position: {served!r}")
    print(f"webui: served: {served}")

    # Tool calls and collapsing reasoning, from a synthetic stream through the page's own renderer.
    driver.execute_script("""
        const ui = window.switchyardUI, m = ui.newAssistant();
        ui.applyDelta(m, {reasoning_content: 'The user wants the weather.'});
        ui.applyDelta(m, {tool_calls: [{index: 0, id: 'call-1', type: 'function', function: {name: 'get_weather', arguments: ''}}]});
        ui.applyDelta(m, {tool_calls: [{index: 0, function: {arguments: '{"city": '}}]});
        ui.applyDelta(m, {tool_calls: [{index: 0, function: {arguments: '"Paris"}'}}]});
        ui.finishMessage(m, {predicted_per_second: 10, predicted_n: 9, cache_n: 0, draft_n: 4, draft_n_accepted: 3}, null);
        m.node.id = 'synthetic';""")
    card = driver.find_element(By.CSS_SELECTOR, "#synthetic .tool-call").text
    check("get_weather" in card and '"city": "Paris"' in card, f"tool call card: {card!r}")
    check(driver.execute_script("return !document.querySelector('#synthetic details.reasoning').open"),
          "reasoning collapses once the answer (a tool call) is there")
    check("MTP 3/4 accepted (75%)" in driver.find_element(By.CSS_SELECTOR, "#synthetic .stats").text, "MTP acceptance in the stats")
    driver.execute_script("document.getElementById('synthetic').remove()")
    driver.save_screenshot(shot)
    print(f"webui: {checks} checks passed; screenshot {shot}")
finally:
    driver.quit()
