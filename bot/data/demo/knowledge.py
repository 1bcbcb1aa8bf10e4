"""The demo org's knowledge base: entries, their tags and authors."""

from __future__ import annotations

from typing import Any

KNOWLEDGE: list[dict[str, Any]] = [
    # --- Refunds ---
    {
        "title": "Refund for a prepaid top-up made to the wrong number",
        "body": "Find the top-up in the payments history and confirm the receiving number is on our network; if it belongs to another operator we cannot recover it and the customer must contact their card issuer. If the receiving number has not used the credit, raise a Top-up Reversal in the billing console with reason code TU-07 and the original transaction reference. The credit is clawed back and the refund reaches the original card in 3-5 working days. If part of the credit has been used, refund only the unused balance and explain we cannot contact the other number's owner.",
        "tags": ["refunds", "prepaid top-up"],
        "authors": ["maria", "ewa"],
    },
    {
        "title": "How do I refund an overpayment on a pay-monthly account?",
        "body": "Overpayments show as a credit balance on the account summary. By default the credit is used against the next bill, so only refund if the customer asks or the account is closing. Issue the refund to the last payment method used; card refunds take 3-5 working days and bank transfers 5-7 working days. Add a note with the amount and the reason so the next agent can see it.",
        "tags": ["refunds", "billing"],
        "authors": ["priya", "grace.o"],
    },
    {
        "title": "Who can approve a refund over £50?",
        "body": "Agents can issue refunds and goodwill credits up to £50 per account in any rolling 30 days without approval. Between £50 and £250, post the account number and reason in the billing huddle channel and wait for a lead to approve it in the thread. Anything over £250 needs the Billing lead plus a finance ticket in the FIN queue. Never split one refund into smaller amounts to stay under a limit.",
        "tags": ["refunds"],
        "authors": ["priya"],
    },
    {
        "title": "Top-up failed but the customer's card was still charged",
        "body": "Check the top-up log: a status of PENDING older than 2 hours or FAILED with a card authorisation means the money is held, not taken. Most holds drop off automatically within 5 working days, so tell the customer this first. If the payment shows as SETTLED with no credit applied, either apply the credit manually or raise a Top-up Reversal with reason code TU-03 if the customer prefers the money back.",
        "tags": ["prepaid top-up", "refunds", "card payments"],
        "authors": ["maria", "joy"],
    },
    {
        "title": "Refund after cancelling within the 14-day cooling-off period",
        "body": "Customers can cancel a new contract within 14 days of the device being delivered, or of the SIM arriving for SIM-only plans. The device must be returned in its original condition using the prepaid returns bag; once the warehouse scans it, the first month's charge and any upfront cost are refunded automatically. Usage during the 14 days (calls outside bundle, roaming) is still charged. Do not apply an early termination fee to a cooling-off cancellation.",
        "tags": ["refunds", "contract cancellation"],
        "authors": ["lerato", "fatima"],
    },
    {
        "title": "Refunding an unused roaming bundle when a trip is cancelled",
        "body": "Roaming bundles that have not been used can be refunded within 30 days of purchase; check the usage tab shows zero roaming sessions. Remove the bundle first, then issue the refund as a bill credit for pay-monthly or as airtime for prepaid. If the bundle was partly used, we only refund the unused days of a Roam Pass, not a data add-on.",
        "tags": ["refunds", "roaming bundles"],
        "authors": ["grace.o", "kasia"],
    },
    # --- Billing & payments ---
    {
        "title": "Explaining a late payment fee and when we can waive it",
        "body": "A £5 late payment fee is added if the bill is still unpaid 14 days after the due date. Agents can waive it once per account in any 12 months, for example when a direct debit failed because of a bank error. Check the account notes for a previous waiver before offering one. A second waiver needs a lead's approval in the billing huddle channel.",
        "tags": ["late fees"],
        "authors": ["hannah"],
    },
    {
        "title": "Customer disputes a charge on their bill: first steps",
        "body": "Ask which line on the bill they are disputing and open the itemised view for that period. Most disputes are out-of-bundle usage, premium-rate numbers or a prorated first bill, so check those first. If the charge is our error, credit it and note the reason; if it is valid, walk the customer through the usage. Put the disputed amount on hold for 28 days so no late fee is added while it is investigated.",
        "tags": ["bill disputes"],
        "authors": ["grace.o", "omar"],
    },
    {
        "title": "How to send a customer an itemised bill",
        "body": "Itemised bills are free for the last 6 months and can be downloaded from the customer's online account under Bills. To email one, open the bill in the billing console and choose Send itemised copy; it goes to the email address on the account only. Older bills up to 2 years back can be requested through the billing archive form and take 5 working days.",
        "tags": ["itemised bills"],
        "authors": ["omar"],
    },
    {
        "title": "Handling a chargeback notification from the card issuer",
        "body": "When a chargeback arrives the account is flagged automatically and the disputed amount moves back onto the balance. Do not issue a separate refund, or the customer will be paid twice. Upload evidence (bill copy, usage, call notes) to the chargeback case within 10 days. If the customer calls, explain that the bank is handling the dispute and their service stays active while it is open.",
        "tags": ["chargebacks"],
        "authors": ["sipho", "priya"],
    },
    {
        "title": "Setting up or changing a direct debit mandate",
        "body": "Take the account holder's sort code and account number and read the Direct Debit Guarantee aloud before saving. New mandates take 3 working days to activate; if the next bill is due sooner, offer a one-off card payment. A change of payment date can be made once per billing cycle, and the first bill after the change may be prorated.",
        "tags": ["direct debit"],
        "authors": ["tomasz"],
    },
    {
        "title": "Direct debit failed: what happens next and when we retry",
        "body": "If a direct debit is returned unpaid, we retry automatically 7 days later and send the customer an SMS. If the retry also fails, the £5 late fee applies after 14 days and outgoing calls are barred after 28 days. Offer a card payment to clear the balance straight away and check the bank details on the mandate are still correct.",
        "tags": ["direct debit", "late fees"],
        "authors": ["tomasz", "hannah"],
    },
    {
        "title": "Top-up voucher code not accepted",
        "body": "Ask the customer to read the 16-digit code back and check for common mix-ups such as 0 and 8. Look the voucher up in the voucher tool: USED means it was applied to another number, and EXPIRED vouchers are older than 12 months. For a valid code that still fails, apply the credit manually and send the voucher serial number to the payments team.",
        "tags": ["prepaid top-up"],
        "authors": ["ewa"],
    },
    {
        "title": "Card declined when paying a bill over the phone",
        "body": "Most declines are 3-D Secure failures, so ask whether the customer received a code from their bank. Try no more than 3 times in 24 hours, otherwise the card is blocked by our payment provider. If it keeps failing, send a payment link by SMS so the customer can pay in their banking app, or offer a bank transfer with the account number as the reference.",
        "tags": ["card payments"],
        "authors": ["tomasz", "sipho"],
    },
    {
        "title": "Explaining prorated charges on a first bill",
        "body": "The first bill usually covers a part month plus the next month in advance, so it looks higher than the plan price. Open the bill breakdown and show the customer the two lines separately, with the exact number of days charged for the part month. From the second bill onwards they will pay the normal monthly price.",
        "tags": ["billing"],
        "authors": ["priya", "hannah"],
    },
    {
        "title": "Looking up a customer's payments & refunds history",
        "body": "In the billing console open Payments & Refunds and search by <account-id>, the 10-digit number starting with 7, not the mobile number. Filter by date to see each payment, its method and status, and any refunds linked to it. If a line shows <pending> for more than 5 working days, raise it with the payments team rather than paying again.",
        "tags": ["payments", "billing"],
        "authors": ["maria", "priya"],
    },
    {
        "title": "Sending a secure payment link by SMS",
        "body": "Use the Pay by link option on the account and confirm the mobile number before sending; the link is valid for 24 hours and only for the amount shown. Customers often reply with 👍 but that does not confirm anything, so check the payment status before closing the contact. Never take card details in chat or email.",
        "tags": ["payments", "card payments"],
        "authors": ["maria", "tomasz"],
    },
    # --- Accounts ---
    {
        "title": "How to pass identity verification before discussing an account",
        "body": "Callers must pass IDV before you discuss or change anything: full name, date of birth and two characters of the account password. If they cannot give the password, send a one-time code to the mobile number on the account instead. Three failed attempts lock telephone access for 24 hours; do not give hints about which answer was wrong.",
        "tags": ["identity verification"],
        "authors": ["anna.w", "paolo"],
    },
    {
        "title": "Suspected SIM swap fraud: immediate actions",
        "body": "If a customer says their phone lost service suddenly and they did not request a new SIM, check the SIM history for a swap in the last 48 hours. If there is one they did not make, bar the line straight away and add a fraud marker to the account. Transfer to the fraud team on extension 4410 and advise the customer to call their bank. Never issue another SIM on the same call.",
        "tags": ["fraud", "sim"],
        "authors": ["anna.w", "mei"],
    },
    {
        "title": "Customer received a suspicious text asking them to pay a bill",
        "body": "Our payment texts only ever come from the sender name BILLING and never ask for card details by reply. Ask the customer to forward the message to 7726 and delete it without clicking the link. If they have already entered card details, advise them to call their bank now and note the account with the time and the sender number.",
        "tags": ["fraud"],
        "authors": ["anna.w", "mei"],
    },
    {
        "title": "Customer locked out of the online account",
        "body": "After IDV, send a password reset link from the account tools; it goes to the email on the account and expires after 1 hour. If the customer no longer has access to that email, update it only after a one-time code has been confirmed from the mobile number. Five failed logins lock the account for 30 minutes, which clears by itself.",
        "tags": ["password reset"],
        "authors": ["paolo"],
    },
    {
        "title": "Transferring ownership of an account to another person",
        "body": "Both the current and the new account holder must pass IDV, ideally on the same call. The new holder goes through a credit check and any device balance transfers with the account. Use the Change of Ownership form in the account tools; the transfer completes at the start of the next billing cycle and the number stays the same.",
        "tags": ["account ownership transfer", "accounts"],
        "authors": ["fatima"],
    },
    {
        "title": "Verifying a caller who is not the account holder",
        "body": "We can only speak to a third party who is listed as an authorised user on the account. If they are not listed, the account holder must add them by calling in or through the online account; we cannot add them on the third party's word. Power of attorney documents go to the accounts team by email and take 5 working days to be applied.",
        "tags": ["identity verification", "accounts"],
        "authors": ["anna.w", "daniel"],
    },
    {
        "title": "Deceased customer: closing the account with care",
        "body": "Offer condolences and do not ask the caller to pass IDV; instead, take their name, relationship and a contact number. Stop all charges from the date of death and waive any early termination fee and outstanding device balance. Ask for a copy of the death certificate to be emailed within 30 days, and note the account so nobody contacts the family about payments.",
        "tags": ["accounts", "contract cancellation"],
        "authors": ["fatima", "daniel"],
    },
    # --- Retention ---
    {
        "title": "Customer wants to cancel their contract: the save conversation",
        "body": "Ask why they want to leave before mentioning any offer; the reason decides what you can offer. For price, check loyalty offers; for coverage, check the postcode checker and offer a signal booster; for a device issue, offer a repair or early upgrade. If they still want to go, process the cancellation politely with a 30-day notice period and never make them call back.",
        "tags": ["contract cancellation", "retention"],
        "authors": ["fatima", "liam"],
    },
    {
        "title": "Calculating the early termination fee",
        "body": "The early termination fee is the remaining monthly plan charges until the end of the minimum term, less 20%, plus any outstanding device balance. The cancellation screen works this out, but always read the final figure to the customer before confirming. No fee applies in the last 30 days of the term or for cancellations after a price rise notice within the 30-day window.",
        "tags": ["contract cancellation"],
        "authors": ["liam", "diego"],
    },
    {
        "title": "Customer asks for a PAC or STAC code to leave",
        "body": "Customers can get a PAC (keep number) by texting PAC to 65075 or a STAC (new number) by texting STAC to 75075; both are free and arrive within a minute. If they ask us on the phone, give the code after IDV without a save conversation unless they ask about offers. Codes are valid for 30 days and the switch completes the next working day.",
        "tags": ["porting"],
        "authors": ["diego"],
    },
    {
        "title": "Port-in stuck: number not transferred after 1 working day",
        "body": "Check the port request status in the porting tool; REJECTED usually means the PAC did not match the number or has expired. Ask the customer for a new PAC from their old operator and resubmit. If the status is ACCEPTED but the number has not moved by 6pm the next working day, raise a porting escalation and give the customer a temporary number.",
        "tags": ["porting"],
        "authors": ["diego", "liam"],
    },
    {
        "title": "Which loyalty offers can agents apply without approval?",
        "body": "Agents can apply the standard loyalty discount of 20% off the plan price for 12 months, or add a free extra 20GB data bundle, once per account. Price matching against another operator needs a screenshot of the competitor offer and a lead's approval. Offers cannot be combined and do not apply to accounts in arrears.",
        "tags": ["loyalty offers", "retention"],
        "authors": ["lerato"],
    },
    {
        "title": "Checking if a customer is eligible for an early upgrade",
        "body": "Customers can upgrade from month 18 of a 24-month contract without a fee if the account is fully paid. Before month 18, the upgrade screen shows the fee to pay off the remaining airtime. Any outstanding device balance must be cleared or moved onto the new plan. Always check the account for a fraud marker before ordering a new handset.",
        "tags": ["upgrades"],
        "authors": ["rachel", "sam.k"],
    },
    {
        "title": "Handset upgrade with an outstanding device balance",
        "body": "The remaining device plan balance must be settled before a new device plan can start. Offer to pay it in full by card or add it to the first bill of the new plan. If the customer is trading in the old handset, the trade-in value is applied after the warehouse checks the device, usually within 7 days.",
        "tags": ["upgrades", "devices"],
        "authors": ["rachel", "rafael"],
    },
    {
        "title": "Customer moving abroad permanently: roaming or cancellation?",
        "body": "Our plans are for customers who live in the UK; permanent roaming is flagged automatically after 4 months of mainly roaming use. Explain that they will need a local plan abroad and offer cancellation with the 30-day notice period. If they want to keep the number, suggest moving to a low-cost SIM-only plan and checking roaming charges for their destination.",
        "tags": ["roaming", "contract cancellation"],
        "authors": ["kasia", "fatima"],
    },
    # --- Devices ---
    {
        "title": "Ordering a replacement SIM or eSIM",
        "body": "After IDV, order a physical SIM from the device tools; it arrives in 1-2 working days and the old SIM stops working once the new one is activated. An eSIM is sent as a QR code by email and can be active within 15 minutes. Replacement SIMs are free once every 12 months, then £5. Check for a fraud marker before any SIM change.",
        "tags": ["sim"],
        "authors": ["kwame", "nina.p"],
    },
    {
        "title": "Activating an eSIM when the QR code fails",
        "body": "Each QR code can be scanned only once, so if activation failed part way, cancel the eSIM profile in the device tools and issue a new one. Ask the customer to be on Wi-Fi and to delete the old profile from the phone before scanning again. If the phone says the code is no longer valid, check the handset is unlocked and supports eSIM.",
        "tags": ["sim"],
        "authors": ["marco"],
    },
    {
        "title": "How to raise a device insurance claim for a lost or stolen phone",
        "body": "The customer must report the loss within 48 hours and bar the device with us first; bar it by IMEI in the device tools. Open the claim in the insurance portal with the police reference number for theft. The excess is £75 for loss or theft and £50 for accidental damage, and an approved replacement is delivered in 2 working days.",
        "tags": ["device insurance"],
        "authors": ["rafael"],
    },
    {
        "title": "Booking a handset repair under warranty",
        "body": "Devices are covered by a 24-month manufacturer warranty for faults, not for accidental damage. Book the repair in the repairs portal and send the customer a prepaid box; the repair takes 5-7 working days from receipt. Offer a loan phone if the customer has no other phone. Water damage or a cracked screen is charged unless they have device insurance.",
        "tags": ["handset repairs"],
        "authors": ["rafael", "nina.p"],
    },
    {
        "title": "Unlocking a device for use on another network",
        "body": "All handsets sold since December 2021 are already unlocked, so check the purchase date first. For older devices, raise an unlock request in the device tools; the code or remote unlock is sent within 2 working days at no charge. Ask the customer to test with another network's SIM afterwards.",
        "tags": ["device unlocking"],
        "authors": ["kwame", "marco"],
    },
    # --- Network ---
    {
        "title": "Customer has no 5G signal in an area shown as covered",
        "body": "Check that the plan includes 5G, the handset supports our 5G bands, and 5G is turned on in the phone's mobile network settings. Then check the postcode in the coverage checker for planned works. If everything is correct and there are no works, log a network fault with the postcode and the times the problem happens.",
        "tags": ["5g coverage"],
        "authors": ["kwame", "ben"],
    },
    {
        "title": "Resetting APN settings for mobile data and picture messages",
        "body": "Most data issues after a SIM change are wrong APN settings. Send the settings SMS from the device tools, or set them by hand: APN internet, no username or password, and MMS proxy as on the APN reference sheet. Zoë Martin maintains that sheet; if a handset isn't listed, ask in the Devices & Network huddle channel.",
        "tags": ["apn settings"],
        "authors": ["zoe"],
    },
    {
        "title": "Logging a signal complaint and checking for known mast outages",
        "body": "Take the full postcode and check the network status page for outages or planned works within 2km. If there is a known issue, give the customer the estimated fix time and add them to the SMS update list. If not, log a signal complaint with the postcode, whether it affects indoors or outdoors, and the handset model.",
        "tags": ["signal complaints", "network"],
        "authors": ["ben", "zoe"],
    },
    {
        "title": "Wi-Fi Calling not working on a supported handset",
        "body": "Check the handset and software version are on the supported list and that Wi-Fi Calling is turned on in the phone settings. An emergency address must be saved on the account before Wi-Fi Calling works. Ask the customer to restart the router and the phone; if it still fails, log a network fault with the router make.",
        "tags": ["wifi calling", "network"],
        "authors": ["zoe"],
    },
    # --- Roaming ---
    {
        "title": "Customer billed for roaming in a country covered by their plan",
        "body": "Check the roaming records for the network used; phones near borders sometimes connect to a network in a non-covered country, or to a ship or aircraft network. If the charges came from a covered country, credit them in full. For maritime or in-flight charges, explain why and offer a one-off goodwill credit of up to 50% if this is the first time.",
        "tags": ["roaming charges", "bill disputes"],
        "authors": ["kasia", "jordan"],
    },
    {
        "title": "Adding a roaming bundle before the customer travels",
        "body": "A Roam Pass costs £2.50 a day and lets the customer use their UK allowance in 48 destinations; it is only charged on days they use the phone abroad. For other destinations, offer a 7-day data add-on. Add bundles at least 1 hour before travel, and remind the customer that calls to local numbers abroad are not included.",
        "tags": ["roaming bundles"],
        "authors": ["kasia"],
    },
    {
        "title": "International call rates and how to enable international dialling",
        "body": "International dialling is turned on by default for pay-monthly accounts older than 3 months and for prepaid customers with credit. For newer accounts, turn it on from the account tools after IDV. Rates are listed by country in the price guide; the cheapest option for frequent callers is the International 500 add-on.",
        "tags": ["international calls"],
        "authors": ["jordan"],
    },
    {
        "title": "Setting or changing a spending cap",
        "body": "Customers can set a monthly spending cap from £0 to £100 for charges outside their allowance; £0 blocks all extra charges. Changes take effect within 1 hour. Roaming and premium-rate charges count towards the cap but some charges, such as device insurance, do not. Tell the customer they will get an SMS at 80% and 100% of the cap.",
        "tags": ["spending caps"],
        "authors": ["jordan", "ewa"],
    },
    # --- Broadband ---
    {
        "title": "Router setup: lights, default credentials and first connection",
        "body": "The router should show a solid white light within 10 minutes of being plugged in. The Wi-Fi name and password are printed on the card on the back of the router. If the light is flashing orange after 10 minutes, check the cable is in the grey port and run a line test from the broadband tools.",
        "tags": ["router setup"],
        "authors": ["aisha"],
    },
    {
        "title": "Booking or rescheduling a fibre installation appointment",
        "body": "Installation slots are morning (8am-1pm) or afternoon (1pm-6pm), and an adult must be at home. Reschedule from the broadband orders screen up to 48 hours before the slot without a charge. If the engineer did not turn up, rebook the earliest slot and apply the missed appointment compensation of £30.",
        "tags": ["fibre installation", "broadband"],
        "authors": ["aisha"],
    },
    {
        "title": "Broadband outage: checking the status page and compensation",
        "body": "Check the broadband status page by postcode before troubleshooting. If there is a known outage, give the customer the estimated fix time and offer mobile data as a backup. When service is not fixed after 2 full working days, compensation of £9.33 per day is added automatically to the next bill.",
        "tags": ["broadband outages"],
        "authors": ["aisha", "thabo"],
    },
    {
        "title": "Replacing a faulty broadband router",
        "body": "Before sending a replacement, run a line test; if the line is fine but the router keeps restarting or shows a red light, it is faulty. Order a replacement from the broadband tools for next-day delivery, free within the first 24 months. The old router goes back in the same box using the prepaid label.",
        "tags": ["router setup", "broadband outages"],
        "authors": ["thabo", "aisha"],
    },
    {
        "title": "Customer complains broadband is slower than promised",
        "body": "Ask the customer to run a speed test on a device connected by cable, not Wi-Fi. If the result is below the minimum guaranteed speed in the welcome email, log a speed fault. We have 30 days to fix it; after that the customer can leave without an early termination fee.",
        "tags": ["speed complaints"],
        "authors": ["thabo"],
    },
]
